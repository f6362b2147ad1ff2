"""Two real WebSocket peers for the relay tests, built on wsproto and plain blocking sockets.

Neither knows our protocol (the proxy must not need it). `FrameServer` echoes every data
frame as it came (same type, same fragmentation), answers pings, answers a close with the
same code, and obeys a few text commands (`cmd:ping:X`, `cmd:fragping`, `cmd:close:CODE:REASON`)
to send frames of its own. Both sides record what they received frame by frame, so a test can
compare what was sent with what arrived through the proxy.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

Record = tuple[Any, ...]
"""('text'|'binary', payload of one whole frame, fin) | ('ping'|'pong', payload) | ('close', code, reason)."""


class Recorder:
    """Turns wsproto events into one record per whole frame."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._partial: list[Any] = []
        self.changed = threading.Condition()

    def add(self, event: Any) -> None:
        if isinstance(event, Message):
            self._partial.append(event.data)
            if not event.frame_finished:
                return
            kind = "text" if isinstance(event, TextMessage) else "binary"
            payload = ("" if kind == "text" else b"").join(self._partial)
            self._partial.clear()
            record: Record = (kind, payload, event.message_finished)
        elif isinstance(event, Ping):
            record = ("ping", bytes(event.payload))
        elif isinstance(event, Pong):
            record = ("pong", bytes(event.payload))
        elif isinstance(event, CloseConnection):
            record = ("close", int(event.code), event.reason or "")
        else:
            return
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Record]:
        """The first `count` records, waiting for them (AssertionError with what came, on timeout)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.records) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} frames, got {self.records}"
                self.changed.wait(left)
            return list(self.records[:count])


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        owner = self.server.owner
        sock: socket.socket = self.request
        sock.settimeout(10)
        ws = WSConnection(ConnectionType.SERVER)
        recorder = Recorder()
        owner.connections.append(recorder)
        try:
            while True:
                data = sock.recv(65536)
                ws.receive_data(data or None)
                for event in ws.events():
                    out = self.on_event(ws, event, recorder)
                    if out:
                        sock.sendall(out)
                if not data or ws.state is ConnectionState.CLOSED:  # the server ends TCP after the close handshake
                    return
        except OSError:
            return
        finally:
            sock.close()

    def on_event(self, ws: WSConnection, event: Any, recorder: Recorder) -> bytes:
        owner = self.server.owner
        if isinstance(event, Request):
            owner.requests.append(event)
            subprotocol = event.subprotocols[0] if event.subprotocols else None
            offered = any(str(offer).startswith("permessage-deflate") for offer in event.extensions)
            extensions = [PerMessageDeflate()] if owner.deflate and offered else []
            return ws.send(AcceptConnection(
                subprotocol=subprotocol, extensions=extensions, extra_headers=[(b"x-test-server", b"frames")]))
        recorder.add(event)
        if isinstance(event, Ping):
            return ws.send(event.response())
        if isinstance(event, CloseConnection):
            return ws.send(event.response()) if ws.state is ConnectionState.REMOTE_CLOSING else b""
        if isinstance(event, Message) and event.frame_finished:  # echo the whole frame, as it came
            kind, payload, fin = recorder.records[-1]
            out = ws.send(type(event)(data=payload, message_finished=fin))
            if kind == "text" and fin and payload.startswith("cmd:"):
                out += self.command(ws, payload)
            return out
        return b""

    def command(self, ws: WSConnection, text: str) -> bytes:
        parts = text.split(":")
        if parts[1] == "ping":
            return ws.send(Ping(parts[2].encode()))
        if parts[1] == "fragping":  # a fragmented text message with a ping between its frames
            return (ws.send(TextMessage("frag-one ", message_finished=False)) + ws.send(Ping(b"between"))
                    + ws.send(TextMessage("frag-two", message_finished=True)))
        if parts[1] == "close":
            return ws.send(CloseConnection(int(parts[2]), parts[3]))
        return b""


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FrameServer


class FrameServer:
    """A recording echo server on 127.0.0.1, port 0; a context manager."""

    def __init__(self, deflate: bool = False) -> None:
        self.deflate = deflate
        self.requests: list[Request] = []
        self.connections: list[Recorder] = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"ws://{host}:{port}"

    def __enter__(self) -> FrameServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FrameClient:
    """A wsproto client over a blocking socket, recording what it receives on a reader thread."""

    def __init__(
        self,
        url: str,
        path: str = "/ws",
        subprotocols: tuple[str, ...] = (),
        deflate: bool = False,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.recorder = Recorder()
        self.accepted: AcceptConnection | None = None
        self.rejected: RejectConnection | None = None
        self.ended = threading.Event()
        self.lock = threading.Lock()
        extensions = [PerMessageDeflate()] if deflate else []
        self.sock.sendall(self.ws.send(Request(
            host=f"{host}:{port}", target=path, subprotocols=list(subprotocols), extensions=extensions,
            extra_headers=list(headers))))
        self._handshake()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _handshake(self) -> None:
        while self.accepted is None and self.rejected is None:
            data = self.sock.recv(65536)
            assert data, "connection ended during the handshake"
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = event
                elif isinstance(event, RejectConnection):
                    self.rejected = event
                else:
                    self.recorder.add(event)

    def _read(self) -> None:
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                self.ws.receive_data(data or None)
                for event in self.ws.events():
                    self.recorder.add(event)
                    if isinstance(event, Ping):
                        self.send(event.response())
                    elif isinstance(event, CloseConnection) and self.ws.state is ConnectionState.REMOTE_CLOSING:
                        self.send(event.response())
                if not data:
                    return
        except OSError:
            return
        finally:
            self.ended.set()

    def send(self, event: Any) -> None:
        with self.lock:
            self.sock.sendall(self.ws.send(event))

    def header(self, name: bytes) -> bytes | None:
        assert self.accepted is not None
        return dict(self.accepted.extra_headers).get(name.lower())

    def close(self) -> None:
        """Drop the TCP connection (no close frame) and wait for the reader to see it."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv, which close() alone does not
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)
