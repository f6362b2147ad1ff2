"""The client's exceptions: one tree so tests and Locust users can catch by kind.

Every str() carries the protocol error code first, because Locust groups
failures by the exception text and tests assert on the code.
"""

from __future__ import annotations

import json
from typing import Any


class SocketproofError(Exception):
    """Base of everything the client raises on purpose."""


class HandshakeRejected(SocketproofError):
    """The server refused the upgrade (or there was no WebSocket server to ask).

    `status` is the HTTP status (0 when no HTTP answer came at all) and `code` the
    protocol's `error` field, or a client-side code: `unreachable` (connection
    refused / DNS failure) or `not_websocket` (an answer that is not a protocol
    rejection, e.g. an HTML 404 or a 101 with a bad Sec-WebSocket-Accept).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def from_response(cls, status: int, body: bytes | None, headers: dict[str, str] | None = None) -> HandshakeRejected:
        """Parse the protocol's `{"error", "message"}` body; anything else is `not_websocket`."""
        text = (body or b"").decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return cls(status, parsed["error"], str(parsed.get("message", "")), headers)
        return cls(status, "not_websocket", f"HTTP {status} without a protocol error body: {text[:200]!r}", headers)

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.status}): {self.message}"


class ProtocolError(SocketproofError):
    """The server answered a request with an `error` frame (kept whole in `frame`)."""

    def __init__(self, code: str, message: str, frame: dict[str, Any] | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.frame = frame if frame is not None else {}

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> ProtocolError:
        return cls(str(frame.get("code", "")), str(frame.get("message", "")), frame)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConnectionClosed(SocketproofError):
    """The connection ended; `code`/`reason` come from the close frame (None: TCP just ended)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        if self.code is None:
            return "connection closed without a close frame"
        return f"connection closed with {self.code}" + (f": {self.reason}" if self.reason else "")


class Timeout(SocketproofError):
    """Nothing arrived in time (a reply, a push, a close); the connection may still be open."""

    def __str__(self) -> str:
        return f"timeout: {self.args[0]}" if self.args else "timeout"
