"""The handshake rewriting, pure: what goes upstream, and what the server's answer negotiated."""

from __future__ import annotations

import pytest

from socketproof.proxy.handshake import (
    HeadError,
    accepted_deflate,
    other_extensions,
    parse_head,
    rewrite_request,
    split_head,
)

REQUEST = (
    b"GET /ws?token=abc HTTP/1.1\r\n"
    b"Host: 127.0.0.1:9000\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame\r\n"
    b"Authorization: Bearer xyz\r\n"
    b"\r\n"
)


def test_split_head_waits_for_the_blank_line_and_keeps_what_follows() -> None:
    assert split_head(REQUEST[:-2]) is None
    head, rest = split_head(REQUEST + b"\x81\x85frame")
    assert head == REQUEST and rest == b"\x81\x85frame"
    with pytest.raises(HeadError):
        split_head(b"x" * 70_000)


def test_request_goes_upstream_unchanged_but_host_and_unknown_extensions() -> None:
    request = parse_head(split_head(REQUEST)[0])
    assert request.is_upgrade
    rewritten = rewrite_request(request, "10.0.0.5:8000", plain_messages=False)
    out = rewritten.head
    assert out.start == "GET /ws?token=abc HTTP/1.1"
    assert out.get("Host") == "10.0.0.5:8000"
    assert out.get("Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==" and out.get("Authorization") == "Bearer xyz"
    assert out.get("Sec-WebSocket-Protocol") == "chat, superchat"
    assert out.get("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits"
    assert rewritten.removed == ("x-webkit-deflate-frame",)
    assert out.encode().endswith(b"\r\n\r\n")


def test_a_data_fault_removes_every_extension_offer() -> None:
    rewritten = rewrite_request(parse_head(split_head(REQUEST)[0]), "h:1", plain_messages=True)
    assert rewritten.head.get("Sec-WebSocket-Extensions") is None
    assert rewritten.removed == ("permessage-deflate; client_max_window_bits", "x-webkit-deflate-frame")


def test_response_parsing() -> None:
    response = parse_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n")
    assert response.status == 101
    assert accepted_deflate(response) == "permessage-deflate; server_no_context_takeover"
    assert other_extensions(response) == []
    plain = parse_head(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    assert plain.status == 401 and accepted_deflate(plain) is None
    assert not parse_head(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n").is_upgrade


@pytest.mark.parametrize("raw", [b"\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nno colon here\r\n\r\n"])
def test_bad_heads_are_refused(raw: bytes) -> None:
    with pytest.raises(HeadError):
        parse_head(raw)
