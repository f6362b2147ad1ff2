"""A WebSocket client on a bare socket that sends exactly the bytes a test asks for
(custom upgrade headers, bad frames, fragments, reserved bits, a close at any moment)
and shows exactly what the server sent back, where a WebSocket library would hide it."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the nonce of RFC 6455's example handshake


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def new_key() -> str:
    """A fresh Sec-WebSocket-Key (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_headers(
    token: str | None = None,
    *,
    version: str | None = "13",
    key: str | None = SAMPLE_KEY,
    origin: str | None = None,
) -> dict[str, str]:
    """Upgrade request headers; None leaves a header out (to provoke a rejection)."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade"}
    if version is not None:
        headers["Sec-WebSocket-Version"] = version
    if key is not None:
        headers["Sec-WebSocket-Key"] = key
    if origin is not None:
        headers["Origin"] = origin
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """One frame's bytes (client frames are masked)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F])
    flag = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([flag | n])
    elif n < 65536:
        head += bytes([flag | 126]) + struct.pack("!H", n)
    else:
        head += bytes([flag | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """A plain TCP connection to the server: one HTTP/1.1 request, then (after a 101) raw frames both ways."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.host = urlsplit(url).netloc
        self.sock = socket.create_connection(address(url), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send a GET with exactly these headers (plus Host); return status, headers (lower-case names), body."""
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.sock.sendall("\r\n".join(lines).encode())
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection ended before the response head: {self.buffer!r}"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        response_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            length = int(response_headers.get("content-length", "0"))
            while len(self.buffer) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buffer += chunk
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, response_headers, body

    def send(self, data: bytes) -> None:
        """Send bytes as they are (build them with `frame`: fragments, several frames at once)."""
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        self.send(frame(opcode, payload))

    def send_close(self, code: int = 1000) -> None:
        self.send_frame(OP_CLOSE, struct.pack("!H", code))

    def _need(self, count: int) -> None:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server ended the TCP connection")
            self.buffer += chunk

    def read_frame(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        assert not self.buffer[1] & 0x80, "a server must not mask its frames (RFC 6455 5.1)"
        offset = 2
        if length == 126:
            self._need(4)
            length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif length == 127:
            self._need(10)
            length, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
        self._need(offset + length)
        payload = self.buffer[offset : offset + length]
        self.buffer = self.buffer[offset + length :]
        return opcode, payload

    def read_json(self) -> Any:
        """The next text frame, parsed; pings and pongs on the way are skipped, anything else fails."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == OP_TEXT:
                return json.loads(payload)
            assert opcode in (OP_PING, OP_PONG), (opcode, payload)

    def frames_until_close(self, timeout: float = 10.0) -> tuple[list[tuple[int, bytes]], int | None]:
        """Frames up to the server's close frame and its code (None: TCP ended with no close frame)."""
        deadline = time.monotonic() + timeout
        frames: list[tuple[int, bytes]] = []
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                opcode, payload = self.read_frame()
            except (EOFError, ConnectionResetError):
                return frames, None
            if opcode == OP_CLOSE:
                return frames, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            frames.append((opcode, payload))

    def eof_within(self, seconds: float) -> bool:
        """True when the server ends TCP within `seconds` (whatever it sent before)."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


def open_websocket(ws_url: str, token: str, *, origin: str | None = None, timeout: float = 10.0) -> RawWebSocket:
    """A RawWebSocket past a successful upgrade (to ws_url's path and query) with this bearer token."""
    ws = RawWebSocket(ws_url, timeout)
    parts = urlsplit(ws_url)
    target = (parts.path or "/ws") + (f"?{parts.query}" if parts.query else "")
    try:
        status, _, body = ws.request(target, upgrade_headers(token, key=new_key(), origin=origin))
        assert status == 101, (status, body)
    except BaseException:
        ws.close()
        raise
    return ws
