"""Hostile input against a live server: junk frames, fragments with control frames in
between, invalid UTF-8, slowloris handshakes, floods, oversized frames, tampered tokens.

Each test ends by checking that a bystander connection (opened once for the module)
still gets echo replies: one hostile client must never hurt the others.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from client import HandshakeRejected, ProtocolClient
from tests.support.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWebSocket,
    address,
    frame,
    open_websocket,
)
from tests.support.server import ServerHandle, running_server

MAX_BYTES = 12_000  # room for 'deeply nested' JSON, which must not be refused for size
RATE_LIMIT = 50
HANDSHAKE_TIMEOUT = 1.0
SETTINGS = {
    "max_message_bytes": MAX_BYTES,
    "rate_limit": RATE_LIMIT,
    "handshake_timeout": HANDSHAKE_TIMEOUT,
    "heartbeat_interval": 2,
    "heartbeat_timeout": 2,
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(**SETTINGS) as handle:
        yield handle


@pytest.fixture(scope="module")
def bystander(server: ServerHandle) -> Iterator[ProtocolClient]:
    client = ProtocolClient(server.ws_url, token=server.token("bystander"), timeout=10)
    client.connect()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def others_unaffected(
    request: pytest.FixtureRequest, server: ServerHandle, bystander: ProtocolClient
) -> Iterator[None]:
    yield
    for n in range(3):
        assert bystander.echo({"after": request.node.name, "n": n})["data"] == {"after": request.node.name, "n": n}
    assert server.process is not None and server.process.poll() is None, "the server died"


def raw(server: ServerHandle, user: str) -> RawWebSocket:
    ws = open_websocket(server.ws_url, server.token(user))
    texts = []
    while len(texts) < 2:  # welcome, snapshot
        opcode, payload = ws.read_frame()
        if opcode == OP_TEXT:
            texts.append(json.loads(payload))
    assert [t["type"] for t in texts] == ["welcome", "snapshot"]
    return ws


def echo_frame(n: int) -> bytes:
    return frame(OP_TEXT, json.dumps({"type": "echo", "id": n, "data": n}).encode())


# -- frames -------------------------------------------------------------------------------


def test_random_frames_get_an_answer_or_a_protocol_close(server: ServerHandle) -> None:
    rng = random.Random(20240611)
    outcomes = []
    for n in range(30):
        ws = raw(server, f"junk-{n}")
        try:
            opcode = rng.choice([OP_CONT, OP_TEXT, OP_BINARY, 0x3, 0x7, OP_CLOSE, OP_PING, OP_PONG, 0xB, 0xF])
            size = rng.choice([0, 1, 2, 5, 125, 126, 300])
            payload = bytes(rng.getrandbits(8) for _ in range(size))
            junk = frame(opcode, payload, fin=rng.random() < 0.7, rsv=rng.choice([0, 0, 1, 2, 4, 7]))
            ws.send(junk + echo_frame(n))
            frames, code = ws.frames_until_close(timeout=10) if _closes(ws, n) else ([], "open")
        finally:
            ws.close()
        outcomes.append(code)
        # RFC 6455: 1002 protocol error, 1003/1007 bad data, 1009 too big, 1000 close echo;
        # "open" = the junk was acceptable and the echo came back.
        assert code in ("open", 1000, 1002, 1003, 1005, 1007, 1009), (n, opcode, code, frames)
    assert "open" in outcomes and 1002 in outcomes  # both kinds really happened


def _closes(ws: RawWebSocket, n: int) -> bool:
    """Read until the echo reply (False: still open) or a close / TCP end (True)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ws.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            opcode, payload = ws.read_frame()
        except (EOFError, ConnectionResetError):
            ws.buffer = b""
            return True
        if opcode == OP_CLOSE:
            ws.buffer = frame(OP_CLOSE, payload, mask=False) + ws.buffer  # let frames_until_close see it
            return True
        if opcode == OP_TEXT:
            message = json.loads(payload)
            if message.get("id") == n and message.get("type") == "echo":
                return False
    raise AssertionError("neither an echo nor a close within 10 s")


def test_fragmented_message_with_control_frames_in_between(server: ServerHandle) -> None:
    ws = raw(server, "fragments")
    try:
        text = json.dumps({"type": "echo", "id": "frag", "data": "ü" * 10}).encode()
        parts = [text[:7], text[7:20], text[20:]]  # splits inside a UTF-8 sequence too
        ws.send(frame(OP_TEXT, parts[0], fin=False))
        ws.send(frame(OP_PING, b"p1"))
        ws.send(frame(OP_CONT, parts[1], fin=False) + frame(OP_PING, b"p2") + frame(OP_PONG, b"unsolicited"))
        ws.send(frame(OP_CONT, parts[2], fin=True))
        ws.sock.settimeout(10)
        seen = []
        while not any(op == OP_TEXT for op, _ in seen):
            seen.append(ws.read_frame())
        assert [(op, p) for op, p in seen if op == OP_PONG] == [(OP_PONG, b"p1"), (OP_PONG, b"p2")]
        reply = json.loads(seen[-1][1])
        assert reply == {"type": "echo", "id": "frag", "data": "ü" * 10, "ts": reply["ts"]}
        # Interleaving two data messages is a protocol error: close 1002.
        ws.send(frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_TEXT, b'{"type":"ping"}'))
        assert ws.frames_until_close()[1] == 1002
    finally:
        ws.close()


@pytest.mark.parametrize(
    "frames_",
    [
        [(OP_TEXT, b'{"type":"echo","data":"\xff"}', True)],
        [(OP_TEXT, b'{"type":"echo","data":"\xed\xa0\x80"}', True)],  # UTF-8-encoded surrogate
        [(OP_TEXT, b'{"type":"echo","data":"\xce', False), (OP_CONT, b'\xba\xe1\xbd\xb9\xcf\x83\xff"}', True)],
    ],
    ids=["byte-ff", "encoded-surrogate", "split-across-fragments"],
)
def test_invalid_utf8_in_a_text_frame_closes_1007(server: ServerHandle, frames_: list) -> None:
    ws = raw(server, "bad-utf8")
    try:
        ws.send(echo_frame(1))
        assert ws.read_json()["id"] == 1
        ws.send(b"".join(frame(op, payload, fin=fin) for op, payload, fin in frames_))
        frames, code = ws.frames_until_close()
        assert code == 1007, frames
        assert ws.eof_within(5)
    finally:
        ws.close()
    server.wait_stats(timeout=10, connections=1)  # only the bystander is left


def test_oversized_frames_close_1009(server: ServerHandle) -> None:
    for parts in ([MAX_BYTES + 100], [MAX_BYTES // 2 + 100] * 2):  # one big frame; a message whose fragments add up
        ws = raw(server, "big")
        try:
            body = b'{"type":"echo","data":"' + b"x" * (sum(parts) - 25) + b'"}'
            chunks, start = [], 0
            for i, size in enumerate(parts):
                last = i == len(parts) - 1
                piece = body[start : len(body) if last else start + size]
                chunks.append(frame(OP_TEXT if i == 0 else OP_CONT, piece, fin=last))
                start += size
            ws.send(b"".join(chunks))
            assert ws.frames_until_close()[1] == 1009
        finally:
            ws.close()


def test_json_that_breaks_encoders_is_answered_and_harms_nobody(server: ServerHandle) -> None:
    """Deep nesting and lone surrogates are valid JSON text: an error or an echo, never a
    dead connection (for the sender or for the recipient of a `send`)."""
    receiver = ProtocolClient(server.ws_url, token=server.token("lone-receiver"), timeout=10)
    receiver.connect()
    sender = raw(server, "lone-sender")
    try:
        sender.send(frame(OP_TEXT, b'{"type":"echo","id":1,"data":' + b"[" * 5000 + b"]" * 5000 + b"}"))
        reply = sender.read_json()
        assert (reply["type"], reply["code"], "id" in reply) == ("error", "bad_json", False)
        sender.send(frame(OP_TEXT, b'{"type":"echo","id":2,"data":"\\ud800x\\udfff"}'))
        reply = sender.read_json()
        assert (reply["type"], reply["id"], reply["data"]) == ("echo", 2, "\ud800x\udfff")
        sender.send(frame(OP_TEXT, b'{"type":"send","id":3,"to":"lone-receiver","data":"\\udc00"}'))
        assert sender.read_json()["type"] == "ack"
        assert receiver.next_push(10)["data"] == "\udc00"
        assert receiver.echo("still here")["data"] == "still here"
    finally:
        sender.close()
        receiver.close()


# -- handshake ------------------------------------------------------------------------------


def test_slowloris_handshake_is_dropped_after_the_handshake_timeout(server: ServerHandle) -> None:
    silent = socket.create_connection(address(server.ws_url), timeout=10)
    dribbler = socket.create_connection(address(server.ws_url), timeout=10)
    request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    ended: dict[str, float] = {}
    started = time.monotonic()

    def dribble() -> None:
        try:
            for byte in request:  # one byte every 0.1 s: ~7 s for the whole request
                dribbler.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            ended["dribbler"] = time.monotonic() - started

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        silent.settimeout(HANDSHAKE_TIMEOUT + 10)
        assert silent.recv(100) == b""  # no response, just the end of TCP
        ended["silent"] = time.monotonic() - started
        thread.join(15)
        assert "dribbler" in ended, "the server kept reading a request sent one byte at a time"
    finally:
        silent.close()
        dribbler.close()
    assert HANDSHAKE_TIMEOUT * 0.9 <= ended["silent"] < HANDSHAKE_TIMEOUT + 5
    assert ended["dribbler"] < len(request) * 0.1  # cut before the request was complete
    # A prompt client is unaffected by the timeout.
    status, body = server.get("/healthz")
    assert status == 200


def test_tampered_token_claims_are_refused(server: ServerHandle) -> None:
    token = server.token("honest")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    for change in ({"sub": "mallory"}, {"exp": claims["exp"] + 10**6}, {"role": "admin"}):
        forged = base64.urlsafe_b64encode(json.dumps({**claims, **change}).encode()).rstrip(b"=").decode()
        client = ProtocolClient(server.ws_url, token=f"{header}.{forged}.{signature}", timeout=10)
        with pytest.raises(HandshakeRejected) as caught:
            client.connect()
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    status, body = server.get("/stats", f"{header}.{forged}.{signature}")
    assert (status, body["error"]) == (401, "invalid_token")


# -- load from one connection -----------------------------------------------------------------


def test_a_flood_is_rate_limited_and_other_connections_are_not(server: ServerHandle, bystander: ProtocolClient) -> None:
    before = server.stats()["rate_limited"]
    flooder = raw(server, "flooder")
    count = RATE_LIMIT * 6
    try:
        flooder.send(b"".join(echo_frame(n) for n in range(count)))  # one burst, well within a second
        bystander_replies = [bystander.echo(n)["data"] for n in range(20)]  # meanwhile, at a human pace
        replies = [flooder.read_json() for _ in range(count)]
    finally:
        flooder.close()
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    echoed = [r for r in replies if r["type"] == "echo"]
    assert len(limited) + len(echoed) == count
    assert RATE_LIMIT <= len(echoed) < count and limited
    assert all(set(r) == {"type", "code", "message", "id"} for r in limited)
    assert bystander_replies == list(range(20))
    assert server.stats()["rate_limited"] - before == len(limited)
