"""Secret options (SECRET_OPTIONS in socketproof.run.options): used by the run, shown nowhere.

Locust's web UI renders every option's value into the start form as its default, page source
included (`is_secret` only masks the input box), and it listens on every interface by default.
So a secret given at start-up (command line, locust.conf, SOCKETPROOF_* environment) or
generated for the embedded server is kept here, the form shows it empty, and an empty field
posted back means "the one given at start-up". Log lines and web UI answers that would carry a
secret's value get it replaced by REDACTED, a last net for paths nobody thought of.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from client.tokens import DEFAULT_SECRET
from socketproof.run.options import SECRET_OPTIONS

REDACTED = "********"
MIN_REDACTED_LENGTH = 4
"""Shorter values are not hunted in text: they would blank half of every line, and are no secret."""


@dataclasses.dataclass
class StartupSecrets:
    """The secret options' values as given at start-up, and the embedded server's generated secret."""

    given: dict[str, str]
    generated_jwt_secret: str | None = None
    embedded_hosts: tuple[str, ...] = ()
    """The hosts that reach the embedded server (its own, a fault proxy's in front of it)."""

    @classmethod
    def capture(cls, parsed: Any, environ: Mapping[str, str], embedded: bool = False) -> StartupSecrets:
        """Read each secret from the parsed options, else its SOCKETPROOF_* variable; with no
        --jwt-secret at all and an embedded server to start, generate one for this run."""
        given = {}
        for name, variable in SECRET_OPTIONS.items():
            value = str(getattr(parsed, name, "") or "") or environ.get(variable, "")
            if value:
                given[name] = value
        generated = None
        if embedded and "jwt_secret" not in given:
            generated = secrets.token_urlsafe(32)
        return cls(given, generated)

    def apply(self, parsed: Any, embedded: bool) -> None:
        """Fill each empty secret option (the start form posts them empty) for this run: the
        start-up value; the jwt secret of the embedded server when the run targets it; else the
        development secret (a server of one's own on loopback)."""
        if parsed is None:
            return
        for name in SECRET_OPTIONS:
            if getattr(parsed, name, ""):
                continue
            value = self.given.get(name, "")
            if name == "jwt_secret" and not value:
                value = (self.generated_jwt_secret if embedded else None) or DEFAULT_SECRET
            setattr(parsed, name, value)

    def values(self, parsed: Any = None) -> list[str]:
        """Every secret value in play, longest first (so one inside another is still replaced whole)."""
        found = set(self.given.values())
        if self.generated_jwt_secret:
            found.add(self.generated_jwt_secret)
        for name in SECRET_OPTIONS:
            found.add(str(getattr(parsed, name, "") or ""))
        return sorted(
            (value for value in found if len(value) >= MIN_REDACTED_LENGTH and value != DEFAULT_SECRET),
            key=len,
            reverse=True,
        )


JWT_SHAPE = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
"""A compact JWS (base64url of '{"...' twice): minted and fetched tokens, one per identity, too
many to list, so they are found by their shape."""


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with each secret value and every JWT-shaped token replaced by REDACTED."""
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    if "eyJ" in text:
        text = JWT_SHAPE.sub(REDACTED, text)
    return text


def hide_in_form(template_args: dict[str, Any]) -> None:
    """Blank the default of every secret option in the web UI's start form."""
    extra = template_args.get("extra_options") or {}
    for name in SECRET_OPTIONS:
        option = extra.get(name)
        if isinstance(option, dict):
            option["default_value"] = ""


class RedactingFilter(logging.Filter):
    """Replaces secret values in a log record's text before any handler writes it."""

    def __init__(self, values: Any) -> None:
        super().__init__()
        self._values = values  # a callable: the secrets change when the start form sets one

    def filter(self, record: logging.LogRecord) -> bool:
        values = self._values()
        message = record.getMessage()
        cleaned = redact(message, values)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, values)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(values: Any) -> RedactingFilter:
    """Put the filter on every handler of the root logger (a logger's own filter would not see
    records of its children), as Locust has configured them."""
    log_filter = RedactingFilter(values)
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)
    return log_filter
