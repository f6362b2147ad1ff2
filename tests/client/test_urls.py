"""client/urls.py: every URL helper of the run, pure functions over strings."""

from __future__ import annotations

import pytest

from client.urls import (
    has_path,
    http_base,
    normalize_url,
    same_target,
    shown_url,
    split_host,
    target_url,
    upgrade_url,
    with_query,
    ws_url,
)

# -- what a connection dials ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
        ("http://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
        ("https://example.com/ws", "wss://example.com/ws"),
        ("WSS://example.com/socket", "wss://example.com/socket"),
        ("ws://127.0.0.1:8000", "ws://127.0.0.1:8000/ws"),
        ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws"),
        ("ws://h:1/ws?token=abc", "ws://h:1/ws?token=abc"),
        ("  ws://h:1/ws  ", "ws://h:1/ws"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://h/ws", "127.0.0.1:8000", "ws:///ws", ""])
def test_normalize_url_refuses_other_schemes(bad: str) -> None:
    with pytest.raises(ValueError, match="not a ws://"):
        normalize_url(bad)


def test_a_bare_host_gets_the_adapters_path_and_its_query() -> None:
    assert normalize_url("ws://h:1", "/chat") == "ws://h:1/chat"
    socketio = "/socket.io/?EIO=4&transport=websocket"
    assert normalize_url("http://h:1/?x=1", socketio) == "ws://h:1/socket.io/?EIO=4&transport=websocket&x=1"
    assert normalize_url("ws://h:1/own", socketio) == "ws://h:1/own"  # a path given wins


def test_has_path() -> None:
    assert has_path("ws://h:1/ws") and has_path(" http://h/a/b ")
    assert not has_path("ws://h:1") and not has_path("ws://h:1/") and not has_path("ws://h:1/?x=1")


def test_with_query_appends_form_encoded_parameters() -> None:
    assert with_query("ws://h/ws", {}) == "ws://h/ws"
    assert with_query("ws://h/ws", {"a": "1 2"}) == "ws://h/ws?a=1+2"
    assert with_query("ws://h/ws?b=2", {"a": "1"}) == "ws://h/ws?b=2&a=1"
    assert with_query("ws://h/ws", {"t": "a&b=c"}) == "ws://h/ws?t=a%26b%3Dc"


def test_upgrade_url_takes_the_sessions_path_unless_the_user_gave_one() -> None:
    socketio = "/socket.io/?EIO=4&transport=websocket"
    assert upgrade_url("ws://h:1/ws", socketio, False, {}) == "ws://h:1/socket.io/?EIO=4&transport=websocket"
    assert upgrade_url("wss://h:1/own", socketio, True, {"a": "1"}) == "wss://h:1/own?a=1"
    assert upgrade_url("ws://h:1/ws?x=1", "", False, {"who": "al ice"}) == "ws://h:1/ws?x=1&who=al+ice"
    assert upgrade_url("ws://h:1/ws", "/toy?v=1", False, {"who": "a"}) == "ws://h:1/toy?v=1&who=a"


def test_ws_url_appends_ws_path_to_the_host() -> None:
    assert ws_url("ws://h:1/", "/ws") == "ws://h:1/ws"
    assert ws_url("ws://h:1", None) == ws_url("ws://h:1", "") == "ws://h:1"
    assert ws_url("http://h:1/base/", "/chat") == "http://h:1/base/chat"


# -- what a message may show -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://h:1/ws?token=secret", "ws://h:1/ws"),
        ("wss://user:pass@h:443/ws", "wss://h:443/ws"),
        ("https://user@h/a#frag", "https://h/a"),
        ("ws://h:1", "ws://h:1"),
    ],
)
def test_shown_url_never_carries_a_query_or_credentials(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_target_url_is_the_users_url_as_written() -> None:
    assert target_url("http://h:1/", "/ws", "/chat") == "http://h:1/ws"  # --ws-path wins
    assert target_url("http://h:1/base/", "", "/chat") == "http://h:1/base"  # the host's own path
    assert target_url("ws://h:1", None, "/chat") == "ws://h:1/chat"  # else the adapter's


# -- where the target's HTTP endpoints live, and which target a URL names ------------------


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765"),
        ("wss://example.com/prefix/ws", "https://example.com"),
        ("http://localhost:80", "http://localhost:80"),
        ("https://h:443/", "https://h:443"),
    ],
)
def test_http_base_is_where_stats_lives(host: str, base: str) -> None:
    assert http_base(host) == base


@pytest.mark.parametrize(
    ("host", "split"),
    [
        ("ws://h:1/base/", ("ws://h:1", "/base")),
        ("http://h:1", ("ws://h:1", "")),
        ("https://h:443/a/b", ("wss://h:443", "/a/b")),
        (" wss://h/?q=1 ", ("wss://h", "")),
    ],
)
def test_split_host_gives_the_ws_base_and_the_path(host: str, split: tuple[str, str]) -> None:
    assert split_host(host) == split


def test_same_target_ignores_scheme_spelling_case_and_a_trailing_slash() -> None:
    assert same_target("http://Host:80/base/") == same_target("ws://host:80/base") == "ws://host:80/base"
    assert same_target("https://h:443") == same_target("WSS://h:443") != same_target("ws://h:443")
    assert same_target("ws://h:1/a") != same_target("ws://h:1/b")
    assert same_target("ws://h:1/ws?token=x") == "ws://h:1/ws"
