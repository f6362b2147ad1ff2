"""Settings of the reference server: defaults, then SOCKETPROOF_* variables, then explicit values.

Every setting is validated once, at start-up, so a bad value stops the server with a
message naming the setting instead of failing on the first connection.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from common.defaults import DEFAULT_SECRET
from server.faults import Faults, parse_faults

ENV_PREFIX = "SOCKETPROOF_"


class ConfigError(ValueError):
    """A setting has a value the server cannot run with."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {name!r} ({ENV_PREFIX}{name.upper()}): {problem}")
        self.name = name


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the server needs to know; times are seconds."""

    jwt_secret: str = DEFAULT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_audience: str | None = None
    jwt_public_key: str = ""
    """PEM public key (or a path to one) for RS/ES/EdDSA tokens: an identity provider's, whose
    private key this server never sees. With it, `jwt_algorithm` may be RS256..EdDSA."""
    max_connections_per_user: int = 5
    max_message_bytes: int = 65536
    queue_size: int = 100
    queue_ttl: float = 60.0
    max_retained_users: int = 10000
    max_retained_bytes: int = 64 * 1024 * 1024
    heartbeat_interval: float = 20.0
    heartbeat_timeout: float = 10.0
    rate_limit: int = 1000
    allowed_origins: tuple[str, ...] = ()
    handshake_timeout: float = 10.0
    echo_endpoint: bool = False
    faults: Faults = dataclasses.field(default_factory=Faults)


_ALGORITHMS = {"HS256", "HS384", "HS512"}
_KEY_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}


def _as_int(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    return number


def _as_seconds(name: str, value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ConfigError(name, f"expected seconds (a number), got {value!r}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError(name, f"must be a positive number of seconds, got {value!r}")
    return number


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _as_origins(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(item.strip() for item in value if item and item.strip())


def _convert(name: str, value: Any) -> Any:
    if name == "jwt_secret":
        if not str(value):
            raise ConfigError(name, "must not be empty")
        return str(value)
    if name == "jwt_algorithm":
        if str(value) not in _ALGORITHMS | _KEY_ALGORITHMS:
            raise ConfigError(name, f"must be one of {sorted(_ALGORITHMS | _KEY_ALGORITHMS)}, got {value!r}")
        return str(value)
    if name == "jwt_public_key":
        return _as_public_key(name, value)
    if name == "jwt_audience":
        return str(value) if value not in (None, "") else None
    if name in ("max_connections_per_user", "max_message_bytes", "queue_size", "max_retained_users"):
        return _as_int(name, value, 1)
    if name == "max_retained_bytes":
        return _as_int(name, value, 1024)
    if name == "rate_limit":
        return _as_int(name, value, 0)
    if name in ("queue_ttl", "heartbeat_interval", "heartbeat_timeout", "handshake_timeout"):
        return _as_seconds(name, value)
    if name == "allowed_origins":
        return _as_origins(name, value)
    if name == "echo_endpoint":
        return _as_bool(name, value)
    if name == "faults":
        if isinstance(value, Faults):
            return value
        try:
            return parse_faults(str(value or ""))
        except ValueError as error:
            raise ConfigError(name, str(error)) from None
    raise ConfigError(name, "unknown setting")  # pragma: no cover - guarded by caller


def _as_public_key(name: str, value: Any) -> str:
    """PEM text, or the path of a PEM file (read once, at start-up)."""
    text = str(value or "").strip()
    if not text or text.startswith("-----BEGIN"):
        return text
    try:
        with open(text, encoding="ascii") as handle:
            pem = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(name, f"cannot read the PEM file {text!r}: {error}") from None
    if not pem.startswith("-----BEGIN"):
        raise ConfigError(name, f"{text!r} is not a PEM public key")
    return pem


SETTING_NAMES = tuple(field.name for field in dataclasses.fields(Settings))


def load_settings(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from defaults, then SOCKETPROOF_* variables, then `config`."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in SETTING_NAMES:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    for name, value in (config or {}).items():
        if name not in SETTING_NAMES:
            raise ConfigError(name, f"unknown setting; known: {', '.join(SETTING_NAMES)}")
        values[name] = value
    settings = Settings(**{name: _convert(name, value) for name, value in values.items()})
    if settings.jwt_algorithm in _KEY_ALGORITHMS and not settings.jwt_public_key:
        raise ConfigError("jwt_algorithm", f"{settings.jwt_algorithm} verifies with a public key: set jwt_public_key")
    if settings.jwt_public_key and settings.jwt_algorithm not in _KEY_ALGORITHMS:
        raise ConfigError("jwt_public_key", f"is for RS/ES/EdDSA, not jwt_algorithm {settings.jwt_algorithm}")
    return settings
