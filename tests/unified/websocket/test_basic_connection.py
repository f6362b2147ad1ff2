"""Core test 1: the WebSocket handshake, a working two-way channel, client states.

The handshake is checked at the byte level over a plain socket (so the Sec-WebSocket-Accept
check is ours, not a library's); the channel and the states through ProtocolClient.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from client import ConnectionClosed, HandshakeRejected, ProtocolClient, State
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, collect, new_user, send

RFC6455_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def expected_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + RFC6455_GUID).encode()).digest()).decode()


class RawConnection:
    """An HTTP/1.1 request and, after a 101, RFC 6455 frames over a bare socket."""

    def __init__(self, server: ServerHandle) -> None:
        parts = urlsplit(server.http_url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=3.0)
        self.buf = b""

    def request(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.sock.sendall("\r\n".join(lines).encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection ended before the response head: {self.buf!r}"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        response_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            length = int(response_headers.get("content-length", "0"))
            while len(self.buf) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            body, self.buf = self.buf[:length], self.buf[length:]
        return status, response_headers, body

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed mid-frame")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._exactly(2)
        assert not b1 & 0x80, "a server must not mask its frames (RFC 6455 5.1)"
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._exactly(8))[0]
        return b0 & 0x0F, self._exactly(length)

    def read_json(self) -> dict[str, Any]:
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x1:
                return json.loads(payload)
            assert opcode in (0x9, 0xA), f"unexpected opcode {opcode}"

    def write_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def at_eof(self, timeout: float) -> bool:
        """True when the server ends TCP within `timeout` (skipping whatever frames remain)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except TimeoutError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def upgrade_headers(token: str | None = None, key: str | None = None, version: str = "13") -> dict[str, str]:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": version}
    if key is not None:
        headers["Sec-WebSocket-Key"] = key
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def test_upgrade_handshake_follows_rfc6455(server: ServerHandle, baseline: Baseline, metrics: TestMetrics) -> None:
    user = new_user()
    key = base64.b64encode(os.urandom(16)).decode()
    raw = RawConnection(server)
    try:
        t0 = time.perf_counter()
        status, headers, _ = raw.request("/ws", upgrade_headers(server.token(user), key))
        assert status == 101
        assert headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in headers.get("connection", "").lower()
        assert headers.get("sec-websocket-accept") == expected_accept(key)
        welcome = raw.read_json()
        metrics.rtt((time.perf_counter() - t0) * 1000.0)
        assert (welcome["type"], welcome["user"]) == ("welcome", user)
        assert raw.read_json()["type"] == "snapshot"
        # client -> server (masked) and server -> client on the same socket
        for i in range(20):
            t0 = time.perf_counter()
            raw.write_frame(0x1, json.dumps({"type": "ping", "id": i}).encode())
            pong = raw.read_json()
            metrics.rtt((time.perf_counter() - t0) * 1000.0)
            assert (pong["type"], pong["id"]) == ("pong", i)
        raw.write_frame(0x8, struct.pack("!H", 1000))
        opcode, payload = raw.read_frame()
        while opcode in (0x9, 0xA):
            opcode, payload = raw.read_frame()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
        assert raw.at_eof(2.0), "the server must end TCP after the close handshake"
    finally:
        raw.close()
    baseline.assert_restored()


def test_client_goes_connecting_open_closed_over_a_two_way_channel(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user, peer = new_user(), new_user()
    seen: list[State] = []

    class StateRecorder:
        """Recorder hooks run inside connect(): the state then must be CONNECTING."""

        def opened(self, welcome: dict[str, Any], requested_last_seq: int | None, t: float) -> None:
            seen.append(client.state)

        def sent(self, msg: dict[str, Any], t: float) -> None: ...
        def received(self, msg: dict[str, Any], t: float) -> None: ...
        def server_ping(self, t: float) -> None: ...

        def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None:
            seen.append(client.state)

    client = clients.make(user, recorder=StateRecorder())
    assert client.state is State.CLOSED
    session = client.connect()
    seen.append(client.state)
    assert session.welcome["user"] == user
    assert client.handshake_response is not None and client.handshake_response.status == 101

    with metrics.measure(100):
        for i in range(100):  # client -> server -> client
            assert metrics.timed(client.echo, {"i": i})["data"] == {"i": i}
    other = clients.open(peer)
    for i in range(3):  # server -> client pushes nobody asked for
        assert send(other, user, {"n": i})["queued"] is False
    assert [m["data"] for m in collect(client, 3)] == [{"n": 0}, {"n": 1}, {"n": 2}]

    closed = client.close()
    assert closed.code == 1000
    assert seen == [State.CONNECTING, State.OPEN, State.CLOSED]
    assert client.state is State.CLOSED
    with pytest.raises(ConnectionClosed):
        client.ping()
    other.close()
    baseline.assert_restored()


def test_wrong_path_is_404(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    raw = RawConnection(server)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, body = raw.request("/not-ws", upgrade_headers(server.token(new_user()), key))
    finally:
        raw.close()
    assert status == 404 and "sec-websocket-accept" not in headers
    assert json.loads(body)["error"] == "not_found"
    wrong = clients.track(
        ProtocolClient(server.ws_url.rsplit("/ws", 1)[0] + "/nope", token=server.token(new_user()), timeout=3.0)
    )
    with pytest.raises(HandshakeRejected) as caught:
        wrong.connect()
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert wrong.state is State.CLOSED
    baseline.assert_restored()


def test_plain_get_on_ws_is_400_not_websocket(server: ServerHandle, baseline: Baseline) -> None:
    status, body = server.get("/ws", server.token(new_user()))
    assert status == 400
    assert isinstance(body, dict) and body["error"] == "not_websocket" and body.get("message")
    baseline.assert_restored()


@pytest.mark.parametrize("version", ["12", "8", "14", ""])
def test_bad_websocket_version_is_426(server: ServerHandle, baseline: Baseline, version: str) -> None:
    raw = RawConnection(server)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, body = raw.request("/ws", upgrade_headers(server.token(new_user()), key, version))
    finally:
        raw.close()
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    assert json.loads(body)["error"] == "unsupported_version"
    baseline.assert_restored()


def test_missing_key_is_400_bad_handshake(server: ServerHandle, baseline: Baseline) -> None:
    raw = RawConnection(server)
    try:
        status, headers, body = raw.request("/ws", upgrade_headers(server.token(new_user()), key=None))
    finally:
        raw.close()
    assert status == 400 and "sec-websocket-accept" not in headers
    assert json.loads(body)["error"] == "bad_handshake"
    baseline.assert_restored()
