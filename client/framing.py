"""WebSocket framing for the client side, sans-I/O: bytes in, whole messages out.

wsproto's `FrameProtocol` does the framing: fragmented messages, control frames between
fragments, close codes, RSV bits, UTF-8 validation, masking. One case skips it, measured:
a final, unmasked text frame with no RSV bits outside a fragmented message, which is
nearly every frame a server sends. wsproto takes ~8.5 us to decode one and ~6 us to
encode a masked one; the two fast paths here take ~0.7 us and ~1.9 us (bench/README.md),
and a round trip costs ~40 us of client CPU in all, so wsproto alone would make every
request ~30% dearer. Everything else goes through wsproto, frame by frame.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable

from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

TEXT, BINARY, PING, PONG, CLOSE = "text", "binary", "ping", "pong", "close"
"""Message kinds `FrameDecoder.feed` returns: (kind, payload); text payloads are str, a
close's payload is (code or None, reason)."""

MAX_FRAGMENTS = 65536
"""Fragments one message may come in: each costs a list entry and an object (~50 bytes) besides
its payload, so 64 MiB in one-byte fragments would take gigabytes; 64 MiB in 1 KiB ones fits."""

_NATIVE = sys.byteorder
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack


class FramingError(Exception):
    """The server broke RFC 6455: close the connection with `code` (1002, 1007, 1009...)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.messages: list[tuple[str, object]] = []
        """What `feed()` decoded before the bad frame in the same call (still the server's)."""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


def masked_text_frame(text: str, urandom: Callable[[int], bytes] = os.urandom) -> bytes:
    """A final, masked text frame (RFC 6455 5.3: a fresh random key per frame)."""
    payload = text.encode("utf-8")
    n = len(payload)
    key = urandom(4)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = _LEN16(0x81, 0xFE, n)
    else:
        header = _LEN64(0x81, 0xFF, n)
    if not n:
        return header + key
    mask = int.from_bytes(key * (n // 4) + key[: n % 4], _NATIVE)
    return header + key + (int.from_bytes(payload, _NATIVE) ^ mask).to_bytes(n, _NATIVE)


class FrameEncoder:
    """Client frames: text on the fast path, everything else from wsproto (masked).

    Stateless for whole messages and control frames, so one encoder (ENCODER) serves every
    connection: a FrameProtocol per connection would cost each idle one about a kilobyte."""

    def __init__(self) -> None:
        self._proto = FrameProtocol(client=True, extensions=[])

    text = staticmethod(masked_text_frame)

    def binary(self, data: bytes) -> bytes:
        return bytes(FrameProtocol(client=True, extensions=[]).send_data(data, True))  # no shared fragment state

    def ping(self, payload: bytes = b"") -> bytes:
        return bytes(self._proto.ping(payload))

    def pong(self, payload: bytes = b"") -> bytes:
        return bytes(self._proto.pong(payload))

    def close(self, code: int | None = 1000, reason: str = "") -> bytes:
        """A close frame; code None sends one without a status (RFC 6455 5.5.1)."""
        return bytes(self._proto.close(code, reason or None))


ENCODER = FrameEncoder()
"""The one encoder every transport uses."""


class FrameDecoder:
    """Server frames to whole messages. `feed()` raises FramingError on a protocol violation."""

    __slots__ = ("_buf", "_proto", "_parts", "_size", "_max", "_max_parts")

    def __init__(self, max_message_bytes: int = 64 * 1024 * 1024, max_fragments: int = MAX_FRAGMENTS) -> None:
        self._buf = bytearray()
        self._proto: FrameProtocol | None = None  # made when a frame needs it (client=True: unmasked frames)
        self._parts: list[str | bytes] | None = None  # a fragmented message in progress
        self._size = 0  # its length so far: a running total, as summing the parts per fragment is quadratic
        self._max = max_message_bytes
        self._max_parts = max_fragments

    def feed(self, data: bytes) -> list[tuple[str, object]]:
        buf = self._buf
        buf += data
        out: list[tuple[str, object]] = []
        try:
            while True:
                n = len(buf)
                if n < 2:
                    return out
                b2 = buf[1]
                length = b2 & 0x7F
                pos = 2
                if length >= 126:
                    pos = 4 if length == 126 else 10
                    if n < pos:
                        return out
                    length = int.from_bytes(buf[2:pos], "big")
                    if length < (126 if pos == 4 else 65536):  # RFC 6455 5.2, as wsproto checks
                        raise FramingError(1002, "a payload length not in its minimal encoding")
                if b2 & 0x80:
                    pos += 4
                if length > self._max:
                    raise FramingError(1009, f"a frame of {length} bytes is over the limit of {self._max}")
                end = pos + length
                if n < end:
                    return out
                b1 = buf[0]
                if b1 == 0x81 and not b2 & 0x80 and self._parts is None:
                    try:
                        out.append((TEXT, buf[pos:end].decode("utf-8")))
                    except UnicodeDecodeError:
                        raise FramingError(1007, "a text frame that is not valid UTF-8") from None
                elif b1 == 0x89 and b2 <= 125:  # a final, unmasked ping: the one frame an idle connection gets
                    out.append((PING, bytes(buf[pos:end])))
                else:
                    self._slow(bytes(buf[:end]), out)
                del buf[:end]
        except FramingError as error:
            error.messages = out
            raise

    def _slow(self, frame: bytes, out: list[tuple[str, object]]) -> None:
        """One whole frame through wsproto (validation, fragments, control frames)."""
        proto = self._proto
        if proto is None:  # an idle connection never needs one: made on the first frame that does
            proto = self._proto = FrameProtocol(client=True, extensions=[])
        proto.receive_bytes(frame)
        try:
            for f in proto.received_frames():
                op = f.opcode
                if op is Opcode.PING:
                    out.append((PING, bytes(f.payload)))  # type: ignore[arg-type]
                elif op is Opcode.PONG:
                    out.append((PONG, bytes(f.payload)))  # type: ignore[arg-type]
                elif op is Opcode.CLOSE:
                    code, reason = f.payload  # type: ignore[misc]
                    out.append((CLOSE, (None if code == CloseReason.NO_STATUS_RCVD else int(code), reason)))
                else:
                    self._data(f.opcode, f.payload, f.message_finished, out)  # type: ignore[arg-type]
        except ParseFailed as error:
            raise FramingError(int(error.code), str(error)) from None

    def _data(self, opcode: Opcode, payload: str | bytes, finished: bool, out: list[tuple[str, object]]) -> None:
        parts = self._parts
        if parts is None:
            parts = self._parts = [opcode.name]  # type: ignore[list-item]
            self._size = 0
        self._size += len(payload)
        if self._size > self._max:
            raise FramingError(1009, f"a message over the limit of {self._max} bytes")
        if len(parts) > self._max_parts:  # parts[0] is the kind: this would be fragment max + 1
            raise FramingError(1009, f"a message in over {self._max_parts} fragments")
        parts.append(payload)
        if not finished:
            return
        self._parts = None
        kind = parts[0]
        if kind == "TEXT":
            out.append((TEXT, "".join(parts[1:])))  # type: ignore[arg-type]
        else:
            out.append((BINARY, b"".join(parts[1:])))  # type: ignore[arg-type]
