"""STOMP 1.2 frames as values: encode and decode, no socket (the STOMP 1.2 specification,
"STOMP Frames" and "Augmented BNF").

A frame is a command line, header lines, a blank line, a body and a NUL octet, optionally
followed by end-of-lines; a bare end-of-line between frames is a heart-beat. Over WebSocket
(RabbitMQ web-stomp, stomp.js) each WebSocket message carries one frame, or one heart-beat;
`decode()` also reads several in one message, since nothing in STOMP forbids it.

- Header names and values are UTF-8, escaped in every frame but CONNECT and CONNECTED:
  `\\r`, `\\n`, `\\c` (colon) and `\\\\` (backslash); any other escape is a fatal error.
  Values are never trimmed, and of a repeated header the first entry is the value.
- `content-length`, when present, says how many body octets to read (NULs included); the
  encoder writes it for every frame with a body. Without it the body ends at the first NUL.
- Only SEND, MESSAGE and ERROR may carry a body.

Hostile input never gets further than a `StompFrameError` (a `ValueError`): the decoder
bounds the header count, checks every length and never reads past the message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

NUL = b"\x00"

CLIENT_COMMANDS = frozenset({"SEND", "SUBSCRIBE", "UNSUBSCRIBE", "BEGIN", "COMMIT", "ABORT", "ACK", "NACK",
                             "DISCONNECT", "CONNECT", "STOMP"})
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
COMMANDS = CLIENT_COMMANDS | SERVER_COMMANDS
BODY_COMMANDS = frozenset({"SEND", "MESSAGE", "ERROR"})
"""The only frames that may have a body."""
UNESCAPED_COMMANDS = frozenset({"CONNECT", "CONNECTED"})
"""Frames whose headers are not escaped (kept for STOMP 1.0 compatibility)."""

MAX_HEADERS = 1000
"""Headers read per frame at most (RabbitMQ's own default limit is 1000 too)."""

_COMMAND_RE = re.compile(rb"[A-Za-z]{1,64}")
_ESCAPES = {b"r": b"\r", b"n": b"\n", b"c": b":", b"\\": b"\\"}
_ESCAPE_RE = re.compile(rb"\\(.?)", re.DOTALL)


class StompFrameError(ValueError):
    """A frame that breaks the STOMP 1.2 grammar (to decode), or that cannot be written (to encode)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Heartbeat:
    """A bare end-of-line between frames: the peer is alive (STOMP 1.2, "Heart-beating")."""

    def encode(self) -> bytes:
        return b"\n"


HEARTBEAT = Heartbeat()


@dataclasses.dataclass(frozen=True, slots=True)
class StompFrame:
    """One STOMP frame: `command`, `headers` in wire order (repeats kept), `body` as bytes."""

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def make(cls, command: str, headers: Mapping[str, object] | Iterable[tuple[str, object]] = (),
             body: bytes | str = b"") -> StompFrame:
        """A frame from a mapping or pairs (values turned into str) and a str (UTF-8) or bytes body."""
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return cls(command, tuple((str(name), str(value)) for name, value in pairs),
                   body.encode() if isinstance(body, str) else bytes(body))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of header `name`: its first entry, as STOMP 1.2 says."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.headers)

    @property
    def text(self) -> str:
        """The body as UTF-8 text (undecodable octets replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def encode(self, *, content_length: bool = True) -> bytes:
        """The frame's octets, NUL-terminated. A `content-length` header is added for a
        body unless the frame has one already or `content_length` is False."""
        command = self.command
        if not _COMMAND_RE.fullmatch(command.encode("ascii", errors="replace")):
            raise StompFrameError(f"not a STOMP command: {command!r}")
        if self.body and command not in BODY_COMMANDS:
            raise StompFrameError(f"a {command} frame must not have a body")
        escape = command not in UNESCAPED_COMMANDS
        lines = [command.encode("ascii")]
        for name, value in self.headers:
            lines.append(_encode_header(name, value, escape, command))
        if self.body and content_length and "content-length" not in self:
            lines.append(b"content-length:" + str(len(self.body)).encode("ascii"))
        return b"\n".join(lines) + b"\n\n" + self.body + NUL

    def encode_text(self, *, content_length: bool = True) -> str:
        """`encode()` as str, for a WebSocket text message (the body must be UTF-8)."""
        try:
            return self.encode(content_length=content_length).decode("utf-8")
        except UnicodeDecodeError:
            raise StompFrameError("the body is not UTF-8: send it as a binary message") from None


def _encode_header(name: str, value: str, escape: bool, command: str) -> bytes:
    if not name:
        raise StompFrameError("a header name must not be empty")
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    if escape:
        return _escape(raw_name) + b":" + _escape(raw_value)
    if b"\r" in raw_name + raw_value or b"\n" in raw_name + raw_value or b":" in raw_name:
        raise StompFrameError(f"a {command} header cannot hold CR, LF or (in its name) a colon: {name!r}")
    return raw_name + b":" + raw_value


def _escape(raw: bytes) -> bytes:
    return raw.replace(b"\\", b"\\\\").replace(b"\r", b"\\r").replace(b"\n", b"\\n").replace(b":", b"\\c")


def _unescape(raw: bytes) -> bytes:
    if b"\\" not in raw:
        return raw

    def replace(match: re.Match[bytes]) -> bytes:
        found = _ESCAPES.get(match.group(1))
        if found is None:
            raise StompFrameError(f"undefined escape sequence in a header: {match.group(0)!r}")
        return found

    return _ESCAPE_RE.sub(replace, raw)


def decode(data: bytes | str, *, max_headers: int = MAX_HEADERS) -> list[StompFrame | Heartbeat]:
    """Every frame and heart-beat in one WebSocket message, in order. End-of-lines right
    after a frame's NUL belong to that frame; any other end-of-line is a heart-beat."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    found: list[StompFrame | Heartbeat] = []
    position, end = 0, len(data)
    while position < end:
        if data.startswith(b"\n", position):
            found.append(HEARTBEAT)
            position += 1
        elif data.startswith(b"\r\n", position):
            found.append(HEARTBEAT)
            position += 2
        else:
            frame, position = _decode_frame(data, position, max_headers)
            found.append(frame)
            while True:  # NULL *(EOL)
                if data.startswith(b"\n", position):
                    position += 1
                elif data.startswith(b"\r\n", position):
                    position += 2
                else:
                    break
    return found


def decode_one(data: bytes | str, *, max_headers: int = MAX_HEADERS) -> StompFrame | Heartbeat:
    """The one frame (or heart-beat) a WebSocket message carries; StompFrameError when it
    carries none or more than one."""
    found = decode(data, max_headers=max_headers)
    if len(found) != 1:
        raise StompFrameError(f"expected one frame, found {len(found)}")
    return found[0]


def _line(data: bytes, position: int) -> tuple[bytes, int]:
    """The line at `position` without its EOL, and where the next one starts. A NUL before
    the end of the line ends it too (returned as the rest, unconsumed)."""
    newline = data.find(b"\n", position)
    nul = data.find(NUL, position)
    if nul != -1 and (newline == -1 or nul < newline):
        return data[position:nul], nul
    if newline == -1:
        raise StompFrameError("truncated frame: a line has no end-of-line")
    line = data[position:newline]
    return (line[:-1] if line.endswith(b"\r") else line), newline + 1


def _decode_frame(data: bytes, position: int, max_headers: int) -> tuple[StompFrame, int]:
    raw_command, position = _line(data, position)
    if not _COMMAND_RE.fullmatch(raw_command):
        raise StompFrameError(f"not a STOMP command: {raw_command[:64]!r}")
    command = raw_command.decode("ascii")
    escaped = command not in UNESCAPED_COMMANDS
    headers: list[tuple[str, str]] = []
    while True:
        if data.startswith(NUL, position):
            break  # no blank line before the NUL (the spec's own DISCONNECT example): no body
        line, position = _line(data, position)
        if not line:
            break
        if len(headers) >= max_headers:
            raise StompFrameError(f"more than {max_headers} headers")
        name, colon, value = line.partition(b":")
        if not colon or not name:
            raise StompFrameError(f"not a header line: {line[:64]!r}")
        if escaped:
            name, value = _unescape(name), _unescape(value)
        try:
            headers.append((name.decode("utf-8"), value.decode("utf-8")))
        except UnicodeDecodeError:
            raise StompFrameError(f"a header is not UTF-8: {line[:64]!r}") from None
    length_text = next((value for key, value in headers if key == "content-length"), None)
    if length_text is not None:
        if not length_text.isascii() or not length_text.isdigit() or len(length_text) > 12:
            raise StompFrameError(f"content-length is not a number of octets: {length_text[:20]!r}")
        length = int(length_text)
        if position + length >= len(data):
            raise StompFrameError(f"truncated frame: content-length {length}, "
                                  f"{max(0, len(data) - position)} octets left")
        body, position = data[position:position + length], position + length
        if not data.startswith(NUL, position):
            raise StompFrameError(f"no NUL after the {length} octets of content-length")
    else:
        nul = data.find(NUL, position)
        if nul == -1:
            raise StompFrameError("truncated frame: no NUL terminator")
        body, position = data[position:nul], nul
    return StompFrame(command, tuple(headers), body), position + 1


# -- heart-beats ------------------------------------------------------------------------


def parse_heart_beat(value: str | None) -> tuple[int, int]:
    """A `heart-beat` header as (can send every ms, wants every ms); missing is (0, 0)."""
    if value is None:
        return (0, 0)
    parts = value.split(",")
    if len(parts) != 2 or not all(part.isascii() and part.isdigit() and len(part) <= 10 for part in parts):
        raise StompFrameError(f"heart-beat must be two numbers of milliseconds: {value[:40]!r}")
    return int(parts[0]), int(parts[1])


def negotiate_heart_beat(client: tuple[int, int], server: tuple[int, int]) -> tuple[int, int]:
    """(client -> server, server -> client) heart-beat periods in ms; 0 is none.

    From CONNECT's `heart-beat:cx,cy` and CONNECTED's `heart-beat:sx,sy`: the client sends
    every max(cx, sy) unless either is 0, the server every max(sx, cy) unless either is 0.
    """
    (cx, cy), (sx, sy) = client, server
    return (0 if cx == 0 or sy == 0 else max(cx, sy)), (0 if sx == 0 or cy == 0 else max(sx, cy))
