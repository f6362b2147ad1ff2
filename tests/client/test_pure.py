"""Pure parts of the connection module: URL normalising and request ids."""

from __future__ import annotations

import pytest

from client import ProtocolClient, normalize_url


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
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://h/ws", "127.0.0.1:8000", "ws:///ws", ""])
def test_normalize_url_refuses_other_schemes(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_url(bad)


def test_ids_are_unique_within_and_across_clients() -> None:
    first = ProtocolClient("ws://127.0.0.1:1/ws", token="t")
    second = ProtocolClient("ws://127.0.0.1:1/ws", token="t")
    ids = [first.next_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(isinstance(i, str) for i in ids)
    assert not set(ids) & {second.next_id() for _ in range(1000)}


def test_user_without_token_gets_a_minted_token() -> None:
    assert ProtocolClient("ws://h:1", user="alice").token
    assert ProtocolClient("ws://h:1").token is None
