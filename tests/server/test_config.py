"""Settings: defaults, then SOCKETPROOF_* variables, then explicit values; bad values name the setting."""

from __future__ import annotations

import pytest

from server.config import DEFAULT_SECRET, SETTING_NAMES, ConfigError, Settings, load_settings
from server.faults import Faults


def test_defaults_match_the_protocol_document() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.jwt_secret == DEFAULT_SECRET
    assert settings.jwt_algorithm == "HS256"
    assert settings.jwt_audience is None
    assert settings.max_connections_per_user == 5
    assert settings.max_message_bytes == 65536
    assert settings.queue_size == 100
    assert settings.queue_ttl == 60.0
    assert settings.heartbeat_interval == 20.0
    assert settings.heartbeat_timeout == 10.0
    assert settings.rate_limit == 1000
    assert settings.allowed_origins == ()
    assert settings.faults == Faults()
    assert settings.faults.active() == {}


def test_environment_overrides_defaults() -> None:
    env = {
        "SOCKETPROOF_JWT_SECRET": "s3cret",
        "SOCKETPROOF_JWT_ALGORITHM": "HS512",
        "SOCKETPROOF_JWT_AUDIENCE": "chat",
        "SOCKETPROOF_MAX_CONNECTIONS_PER_USER": "2",
        "SOCKETPROOF_MAX_MESSAGE_BYTES": " 1024 ",
        "SOCKETPROOF_QUEUE_SIZE": "7",
        "SOCKETPROOF_QUEUE_TTL": "0.5",
        "SOCKETPROOF_HEARTBEAT_INTERVAL": "1.5",
        "SOCKETPROOF_HEARTBEAT_TIMEOUT": "2",
        "SOCKETPROOF_RATE_LIMIT": "0",
        "SOCKETPROOF_ALLOWED_ORIGINS": "http://a.test, http://b.test,,",
        "SOCKETPROOF_FAULTS": "drop=0.25,leak_connections",
        "UNRELATED": "ignored",
    }
    settings = load_settings(environ=env)
    assert settings == Settings(
        jwt_secret="s3cret",
        jwt_algorithm="HS512",
        jwt_audience="chat",
        max_connections_per_user=2,
        max_message_bytes=1024,
        queue_size=7,
        queue_ttl=0.5,
        heartbeat_interval=1.5,
        heartbeat_timeout=2.0,
        rate_limit=0,
        allowed_origins=("http://a.test", "http://b.test"),
        faults=Faults(drop=0.25, leak_connections=True),
    )


def test_explicit_value_wins_over_environment() -> None:
    env = {"SOCKETPROOF_QUEUE_SIZE": "7", "SOCKETPROOF_JWT_AUDIENCE": "chat"}
    settings = load_settings({"queue_size": 3, "jwt_audience": ""}, environ=env)
    assert settings.queue_size == 3
    assert settings.jwt_audience is None


def test_explicit_values_accept_native_types() -> None:
    faults = Faults(stale_snapshot=True)
    settings = load_settings({"allowed_origins": ["http://a.test"], "faults": faults, "queue_ttl": 2}, environ={})
    assert settings.allowed_origins == ("http://a.test",)
    assert settings.faults is faults
    assert settings.queue_ttl == 2.0


def test_environment_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETPROOF_QUEUE_SIZE", "9")
    assert load_settings().queue_size == 9


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jwt_secret", ""),
        ("jwt_algorithm", "none"),
        ("jwt_algorithm", "RS256"),
        ("max_connections_per_user", "0"),
        ("max_connections_per_user", "abc"),
        ("max_message_bytes", "1.5"),
        ("queue_size", "abc"),
        ("queue_size", "0"),
        ("queue_ttl", "0"),
        ("queue_ttl", "-1"),
        ("queue_ttl", "nan"),
        ("queue_ttl", "inf"),
        ("heartbeat_interval", "soon"),
        ("heartbeat_timeout", "0"),
        ("rate_limit", "-1"),
        ("faults", "explode"),
        ("faults", "drop=2"),
    ],
)
def test_bad_value_raises_config_error_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SOCKETPROOF_" + name.upper(): value})
    assert caught.value.name == name
    assert repr(name) in str(caught.value)
    assert "SOCKETPROOF_" + name.upper() in str(caught.value)
    with pytest.raises(ConfigError) as caught_explicit:
        load_settings({name: value}, environ={})
    assert caught_explicit.value.name == name


def test_unknown_explicit_setting_is_refused_with_the_known_names() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"queue_sise": 3}, environ={})
    assert caught.value.name == "queue_sise"
    assert "queue_size" in str(caught.value)


def test_setting_names_cover_every_documented_setting() -> None:
    assert set(SETTING_NAMES) == {
        "jwt_secret",
        "jwt_algorithm",
        "jwt_audience",
        "jwt_public_key",
        "max_connections_per_user",
        "max_message_bytes",
        "queue_size",
        "queue_ttl",
        "max_retained_users",
        "max_retained_bytes",
        "heartbeat_interval",
        "heartbeat_timeout",
        "rate_limit",
        "allowed_origins",
        "handshake_timeout",
        "echo_endpoint",
        "faults",
    }


def test_handshake_timeout_and_echo_endpoint() -> None:
    settings = load_settings({}, environ={})
    assert settings.handshake_timeout == 10.0 and settings.echo_endpoint is False
    settings = load_settings(
        {"echo_endpoint": "yes"}, environ={"SOCKETPROOF_HANDSHAKE_TIMEOUT": "2.5"}
    )
    assert settings.handshake_timeout == 2.5 and settings.echo_endpoint is True
    with pytest.raises(ConfigError):
        load_settings({"handshake_timeout": "0"}, environ={})
    with pytest.raises(ConfigError):
        load_settings({"echo_endpoint": "maybe"}, environ={})
