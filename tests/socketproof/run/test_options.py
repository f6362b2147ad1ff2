"""socketproof.run.options: every bad value stops the run with an OptionError naming its flag."""

from __future__ import annotations

import argparse
import types

import jwt
import pytest
from locust.argument_parser import get_parser

from client.tokens import DEFAULT_SECRET, mint_token
from socketproof.run.arguments import add_arguments, build_run_adapter
from socketproof.run.options import LoadOptions, OptionError, drain_seconds, load_options


def parse(*argv: str) -> types.SimpleNamespace:
    """Locust's real parser with Socketproof's options, as the init event sees them."""
    parser = get_parser()
    try:
        add_arguments(parser)
    except argparse.ArgumentError:  # socketproof.run.plugin, once imported, adds them through Locust's event
        pass
    return parser.parse_args(["--headless", *argv])


def test_defaults_parse_to_the_documented_load_options() -> None:
    options = load_options(parse())
    assert options == LoadOptions(jwt_secret=options.jwt_secret)
    assert (options.identities, options.tabs, options.send_interval) == (20, 2, 0.5)
    assert options.jwt_audience is None


def test_no_parsed_options_means_defaults() -> None:
    assert load_options(None) == LoadOptions()
    assert LoadOptions().jwt_secret == ""  # filled at start-up (socketproof.run.secret_options)


def test_good_values_come_through_typed() -> None:
    options = load_options(
        parse(
            "--ws-path", "/socket", "--jwt-secret", "s3cret", "--jwt-audience", "aud", "--identities", "7",
            "--tabs", "100", "--message-bytes", "0", "--send-interval", "0", "--reconnect-probability", "1",
            "--request-timeout", "2.5",
        )
    )
    assert options == LoadOptions(
        ws_path="/socket", jwt_secret="s3cret", jwt_audience="aud", identities=7, tabs=100, message_bytes=0,
        send_interval=0.0, reconnect_probability=1.0, request_timeout=2.5,
    )


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--ws-path", "ws"], "--ws-path"),
        # (--jwt-secret "" is not an error: empty means $SOCKETPROOF_JWT_SECRET or the development
        # secret, because the web UI's form posts the empty default back; see resolve_secrets.)
        (["--identities", "0"], "--identities"),
        (["--tabs", "0"], "--tabs"),
        (["--tabs", "101"], "--tabs"),
        (["--message-bytes", "-1"], "--message-bytes"),
        (["--send-interval", "-0.1"], "--send-interval"),
        (["--send-interval", "inf"], "--send-interval"),
        (["--reconnect-probability", "2"], "--reconnect-probability"),
        (["--reconnect-probability", "-0.5"], "--reconnect-probability"),
        (["--reconnect-probability", "nan"], "--reconnect-probability"),
        (["--request-timeout", "0"], "--request-timeout"),
        (["--request-timeout", "nan"], "--request-timeout"),
        (["--rooms", "0"], "--rooms"),
        (["--rooms", "100001"], "--rooms"),
        (["--server-connections", "http://h:1/metrics"], "--server-connections"),  # no #name
        (["--server-connections", "http://h:1/metrics#"], "--server-connections"),
        (["--server-connections", "h:1/metrics#ws_connections"], "--server-connections"),  # no scheme
        (["--server-connections", "ws://h:1/metrics#ws_connections"], "--server-connections"),
    ],
)
def test_each_bad_value_names_its_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(OptionError) as caught:
        load_options(parse(*argv))
    message = str(caught.value)
    assert message.startswith(flag + " "), message
    assert "\n" not in message


def test_a_value_that_is_not_a_number_names_its_flag() -> None:
    """Values from a config file or the web UI may arrive as strings argparse never typed."""
    parsed = parse()
    parsed.identities = "many"
    with pytest.raises(OptionError, match=r"^--identities must be a number, got 'many'$"):
        load_options(parsed)


@pytest.mark.parametrize("raw", ["-1", "inf", "nan", "601"])
def test_drain_is_validated_too(raw: str) -> None:
    with pytest.raises(OptionError, match="^--drain "):
        drain_seconds(parse("--drain", raw))


def test_drain_default_and_value() -> None:
    assert drain_seconds(parse()) == 1.0
    assert drain_seconds(parse("--drain", "0")) == 0.0
    assert drain_seconds(None) == 1.0


def test_an_empty_secret_mints_with_the_environment_or_the_development_secret(monkeypatch) -> None:
    monkeypatch.delenv("SOCKETPROOF_JWT_SECRET", raising=False)
    secret = load_options(parse("--jwt-secret", "")).jwt_secret
    assert secret == ""
    jwt.decode(mint_token(secret, "alice"), DEFAULT_SECRET, algorithms=["HS256"])
    monkeypatch.setenv("SOCKETPROOF_JWT_SECRET", "from-the-environment-0123456789abcdef")
    jwt.decode(mint_token(load_options(parse()).jwt_secret, "alice"), "from-the-environment-0123456789abcdef",
               algorithms=["HS256"])


def test_protocol_rooms_and_server_connections_come_through() -> None:
    options = load_options(parse())
    assert (options.protocol, options.rooms, options.server_connections, options.ws_path) == (
        "socketproof", 5, None, "")
    source = "http://127.0.0.1:9100/metrics#ws_connections"
    options = load_options(parse("--protocol", " socketio ", "--rooms", "3", "--server-connections", f" {source} "))
    assert (options.protocol, options.rooms, options.server_connections) == ("socketio", 3, source)


def test_the_adapter_comes_from_protocol_and_its_path_from_ws_path() -> None:
    parsed = parse()
    adapter = build_run_adapter(parsed, load_options(parsed))
    assert (adapter.name, adapter.default_path) == ("socketproof", "/ws")
    parsed = parse("--protocol", "docs/examples/json_chat_adapter.py:JsonChatAdapter")
    assert build_run_adapter(parsed, load_options(parsed)).default_path == "/chat", "the adapter's own path"
    parsed = parse("--protocol", "docs/examples/json_chat_adapter.py:JsonChatAdapter", "--ws-path", "/rooms")
    assert build_run_adapter(parsed, load_options(parsed)).default_path == "/rooms"
    assert build_run_adapter(None, LoadOptions()).name == "socketproof"


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ("nope", "is not an adapter"),
        ("docs/examples/missing.py:X", "no Python file at"),
        ("docs/examples/json_chat_adapter.py:Nope", "has no class 'Nope'"),
    ],
)
def test_an_unknown_protocol_is_an_option_error_naming_the_flag(protocol: str, message: str) -> None:
    parsed = parse("--protocol", protocol)
    with pytest.raises(OptionError) as caught:
        build_run_adapter(parsed, load_options(parsed))
    text = str(caught.value)
    assert text.startswith("--protocol ") and message in text and "\n" not in text, text
