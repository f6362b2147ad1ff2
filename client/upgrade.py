"""The opening handshake, all of it within the connect timeout and under a size cap.

websocket-client does the upgrade (proxy tunnel, TLS, the request, the Sec-WebSocket-Accept
check), but reads the answer byte by byte with a timeout per read and no limit: a server
dripping one byte every half second held `connect(timeout=1)` for as long as it liked, and one
endless header line grew memory without bound (issue 24, finding 6). So its TCP and TLS set-up
runs under the deadline, and the HTTP exchange goes through `_Bounded`, a stand-in socket that
ends it at the deadline or the cap with a named error.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from websocket import WebSocket
from websocket._http import connect as open_socket  # websocket-client's own TCP + proxy + TLS (pinned 1.9.2)
from websocket._http import proxy_info

from client.errors import HandshakeRejected, Timeout
from client.waiting import gevent_patched

HEAD_LIMIT = 64 * 1024
"""Bytes of response head (status line and headers) read at most: the order of what common
servers accept for a request's headers."""
BODY_LIMIT = 1024 * 1024
"""Bytes of a refusal's body read at most (a JSON error, or an error page)."""


def upgrade(
    url: str, shown: str, *, timeout: float, header: dict[str, str], origin: str | None,
    sslopt: dict[str, Any] | None,
) -> tuple[Any, int, dict[str, str]]:
    """Connect and upgrade within `timeout` s in all: (socket, status, lower-case headers).
    Raises Timeout, HandshakeRejected (code `response_too_large`), or websocket-client's errors;
    `shown` is the URL as errors may show it (no token in a query)."""
    deadline = time.monotonic() + timeout
    ws = WebSocket(skip_utf8_validation=True, sslopt=sslopt)
    ws.sock_opt.timeout = timeout
    try:
        with _green_deadline(timeout):  # under gevent a TLS handshake's timeout is per read
            sock, _ = open_socket(url, ws.sock_opt, proxy_info(), None)
    except OSError as error:
        if not _timed_out(error):
            raise
        raise Timeout(f"handshake with {shown}: no TCP/TLS connection within {timeout:g}s") from None
    bounded = _Bounded(sock, shown, deadline, timeout)
    try:
        ws.connect(url, socket=bounded, header=header, timeout=timeout, origin=origin,
                   suppress_origin=origin is None, redirect_limit=0)
    except BaseException:
        _close(sock)
        raise
    return sock, int(ws.status or 0), dict(ws.headers or {})


def _green_deadline(seconds: float) -> Any:
    """Under gevent, a gevent.Timeout raising TimeoutError (an OSError, so the half-made TLS socket
    is closed on the way out); without gevent the socket timeout is the bound (CPython's TLS
    handshake keeps one deadline for all its reads)."""
    if gevent_patched() is None:
        return contextlib.nullcontext()
    from gevent import Timeout as GreenTimeout

    return GreenTimeout(seconds, TimeoutError("timed out"))


class _Bounded:
    """What websocket-client reads the answer from: each read within the deadline, at most
    HEAD_LIMIT bytes of head (it reads those one at a time) and BODY_LIMIT of a refusal's body.

    Plain TCP: a head byte is served from the current line, taken whole with MSG_PEEK and then
    recv() up to its end, never past it (what follows the head is the transport's), so a head of
    ~200 bytes costs a dozen system calls rather than 200. TLS (no MSG_PEEK): byte by byte."""

    __slots__ = ("sock", "url", "deadline", "timeout", "peek", "line", "pos", "head", "body", "first")

    def __init__(self, sock: Any, url: str, deadline: float, timeout: float) -> None:
        self.sock = sock
        self.url = url
        self.deadline = deadline
        self.timeout = timeout
        self.peek = not hasattr(sock, "getpeercert")
        self.line = b""  # the head line being handed over, a byte a time
        self.pos = 0
        self.head = 0  # bytes of head taken from the socket
        self.body = 0
        self.first = b""  # the start of the status line, for the error's status

    def recv(self, size: int) -> bytes:
        if size != 1:  # a refusal's body
            data = self._read(size)
            self.body += len(data)
            if self.body > BODY_LIMIT:
                raise self._too_large(f"a body over {BODY_LIMIT} bytes")
            return data
        if self.pos == len(self.line):
            self.line, self.pos = self._next_line(), 0
            if not self.line:
                return b""
        self.pos += 1
        return self.line[self.pos - 1:self.pos]

    def _next_line(self) -> bytes:
        """The head up to and with its next line end (or as much as has come), taken from the socket."""
        if self.peek:
            peeked = self._read(min(4096, HEAD_LIMIT + 1 - self.head), socket.MSG_PEEK)
            line = self._read(peeked.find(b"\n") + 1 or len(peeked)) if peeked else b""
        else:
            line = self._read(1)
        if len(self.first) < 16:
            self.first += line[:16]
        self.head += len(line)
        if self.head > HEAD_LIMIT:
            raise self._too_large(f"a head over {HEAD_LIMIT} bytes")
        return line

    def _read(self, size: int, flags: int = 0) -> bytes:
        self._left()
        try:
            return self.sock.recv(size, flags)
        except OSError as error:
            raise self._late() if _timed_out(error) else error from None

    def send(self, data: bytes) -> int:
        self._left()
        try:
            self.sock.sendall(data)  # websocket-client sends the request with one send()
        except OSError as error:
            raise self._late() if _timed_out(error) else error from None
        return len(data)

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        _close(self.sock)

    def _left(self) -> None:
        """Give the next read or write only what is left of the deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        self.sock.settimeout(left)

    def _late(self) -> Timeout:
        return Timeout(f"handshake with {self.url}: no complete answer within {self.timeout:g}s "
                       f"({self.head + self.body} bytes of it)")

    def _too_large(self, what: str) -> HandshakeRejected:
        first = self.first.split(b"\n", 1)[0].split()
        status = int(first[1]) if len(first) > 1 and first[1].isdigit() and first[0].startswith(b"HTTP/") else 0
        return HandshakeRejected(status, "response_too_large",
                                 f"{self.url}: the handshake answer has {what}: not a WebSocket server to test")


def _timed_out(error: OSError) -> bool:
    """A socket timeout, or TLS's own ("The read operation timed out", an SSLError)."""
    return isinstance(error, TimeoutError) or "timed out" in str(error)


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
