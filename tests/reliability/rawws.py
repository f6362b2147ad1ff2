"""A WebSocket client on a bare socket that sends exactly the bytes a test asks for
(bad frames, fragments, reserved bits), for hostile-input tests."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from urllib.parse import urlsplit

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


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
    """Handshake on a plain socket, then raw frames both ways."""

    def __init__(self, ws_url: str, token: str, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address(ws_url), timeout=timeout)
        host, port = address(ws_url)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {urlsplit(ws_url).path or '/ws'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, f"connection closed during the handshake: {self.buffer!r}"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _need(self, count: int) -> None:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server ended the TCP connection")
            self.buffer += chunk

    def read_frame(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
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
        except ConnectionResetError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()
