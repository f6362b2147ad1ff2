"""The network layer: moves frames between flask-sock sockets and the protocol core.

Everything the protocol decides lives in `server.core`; this module only reads frames,
writes frames, sends heartbeat pings and closes sockets. It runs on gevent.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from typing import Any

import gevent
from simple_websocket import ConnectionClosed, Server
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from server.auth import Claims
from server.core import (
    CLOSE_GOING_AWAY,
    CLOSE_HEARTBEAT,
    CLOSE_TOKEN_EXPIRED,
    Connection,
    Hub,
    Outbound,
)

log = logging.getLogger("socketproof.server")

SEND_TIMEOUT = 10.0  # a peer that reads nothing for this long is dropped
CLOSE_TIMEOUT = 1.0  # how long we wait for the peer's close frame before ending TCP


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
"""One encoder for every frame: json.dumps with options builds a new one per call. No NaN or
Infinity ever goes out (browsers' JSON.parse rejects them); the core refuses them coming in."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(text: str) -> str:
    """JSON text with each lone surrogate written as its \\uXXXX escape (valid JSON and
    UTF-8 encodable). A client may send one in a JSON string (`"\\ud800"`); without this,
    echoing or delivering it failed to encode and dropped the recipient's connection,
    and again on every replay. Only lone surrogates can be in a str from json.loads."""
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class WebSocketServer(Server):
    """simple_websocket's server, answering in order when a client breaks the protocol.

    On a bad frame (reserved bits or opcode, invalid UTF-8, bad close code...) wsproto
    yields a failing close and simple_websocket sent it at once, dropping the replies to
    messages that arrived whole just before the bad frame (RFC 6455 lets those go out
    first; Autobahn 3.2, 4.1.3, 5.15 call the drop non-strict). Here the reader holds
    the failing close until the session has read the buffered messages and asks for
    more (bounded by CLOSE_TIMEOUT), then sends it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._failure: CloseConnection | None = None
        self._drained = threading.Event()
        super().__init__(*args, **kwargs)

    def _handle_events(self) -> bool:
        connection = self.ws
        events = connection.events
        failure: list[CloseConnection] = []

        def until_failure() -> Any:
            for event in events():
                # A close the peer did not send: wsproto found a protocol error (state still OPEN).
                if isinstance(event, CloseConnection) and connection.state is ConnectionState.OPEN:
                    failure.append(event)
                    return
                yield event

        connection.events = until_failure  # type: ignore[method-assign]
        try:
            keep_going = super()._handle_events()
        finally:
            del connection.events
        if not failure:
            return keep_going
        self._failure = failure[0]
        self.event.set()
        self._drained.wait(CLOSE_TIMEOUT)
        try:
            self.sock.send(connection.send(failure[0].response()))
        except (OSError, LocalProtocolError):
            pass
        self.close_reason, self.close_message = failure[0].code, failure[0].reason
        self.connected = False
        self.event.set()
        return False

    def receive(self, timeout: float | None = None) -> Any:
        """As simple_websocket's, but a held failing close ends the session once the
        messages before it are read."""
        while not self.input_buffer:
            if self._failure is not None:
                self._drained.set()
                raise ConnectionClosed(self._failure.code, self._failure.reason)
            if not self.connected:
                raise ConnectionClosed(self.close_reason, self.close_message)
            if not self.event.wait(timeout=timeout):
                return None
            self.event.clear()
        return self.input_buffer.pop(0)


class Link:
    """One live socket and what the transport tracks for it (heartbeat, token timer)."""

    __slots__ = ("ws", "conn", "lock", "ping_sent_at", "next_ping", "timer", "dead")

    def __init__(self, ws: Server, conn: Connection, next_ping: float) -> None:
        self.ws = ws
        self.conn = conn
        self.lock = threading.Lock()
        self.ping_sent_at: float | None = None
        self.next_ping = next_ping
        self.timer: gevent.Greenlet | None = None
        self.dead = False

    def _write(self, data: bytes) -> None:
        """Write a whole frame; a peer that reads nothing for SEND_TIMEOUT is dropped.

        The usual case (the kernel takes the frame at once) is one non-blocking send;
        only a frame that does not fit pays for a gevent.Timeout and a wait."""
        with self.lock:
            sock = self.ws.sock
            try:
                sent = sock.send(data, 0, 0.0)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                with gevent.Timeout(SEND_TIMEOUT):
                    sock.sendall(memoryview(data)[sent:])

    def send_text(self, text: str) -> None:
        if self.dead or not self.ws.connected:
            return
        try:
            try:
                data = self.ws.ws.send(TextMessage(data=text))
            except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
                data = self.ws.ws.send(TextMessage(data=_escape_surrogates(text)))
            self._write(data)
        except (OSError, gevent.Timeout, Exception):  # noqa: BLE001 - any send failure ends the link
            self.abort()

    def ping(self) -> None:
        try:
            self._write(self.ws.ws.send(Ping()))
        except (OSError, gevent.Timeout, Exception):  # noqa: BLE001
            self.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the close handshake and wake the reader so the session ends."""
        if self.dead:
            return
        self.dead = True
        try:
            with self.lock, gevent.Timeout(SEND_TIMEOUT):
                if self.ws.connected:
                    self.ws.close(reason=code, message=reason)
        except (OSError, gevent.Timeout, Exception):  # noqa: BLE001
            self._shutdown()
        self.ws.connected = False
        self.ws.event.set()

    def abort(self) -> None:
        """End the socket at once, with no close frame (the peer is gone or stuck)."""
        self.dead = True
        self.ws.connected = False
        self._shutdown()
        self.ws.event.set()

    def _shutdown(self) -> None:
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Transport:
    """All live links of one server; runs the heartbeat and housekeeping loop."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.links: dict[str, Link] = {}
        self.delay = hub.faults.delay_ms / 1000.0
        self._loop: gevent.Greenlet | None = None
        self.stopping = False

    # -- one session --------------------------------------------------------

    def serve(self, ws: Server, claims: Claims, last_seq: int | None) -> None:
        """Run one WebSocket session from welcome to close (called by the flask-sock route)."""
        self._ensure_loop()
        hub = self.hub
        conn, outbound = hub.open(claims, last_seq, time.time())
        link = Link(ws, conn, time.monotonic() + self.settings.heartbeat_interval)
        self.links[conn.id] = link
        link.timer = gevent.spawn_later(max(0.0, conn.token_exp - time.time()), self._token_timer, link)
        try:
            self.dispatch(outbound)
            receive = ws.receive
            handle = hub.handle
            while not link.dead:
                frame = receive()
                if frame is None:  # woken with nothing to read: the link was closed
                    break
                self.dispatch(handle(conn, frame, time.time()))
        except ConnectionClosed:
            pass
        finally:
            self.links.pop(conn.id, None)
            hub.close(conn, time.time())
            if link.timer is not None:
                link.timer.kill(block=False)
            self._finish(link)

    def serve_echo(self, ws: Server) -> None:
        """`/echo`: every text or binary message back unchanged, on the same WebSocket
        layer as /ws (handshake, framing, close handshake, TCP end); nothing of the protocol."""
        link = Link(ws, None, 0.0)  # type: ignore[arg-type] - no protocol connection here
        try:
            while not link.dead:
                frame = ws.receive()
                if frame is None:
                    break
                event = BytesMessage(data=frame) if isinstance(frame, bytes) else TextMessage(data=frame)
                try:
                    link._write(ws.ws.send(event))
                except (OSError, gevent.Timeout, Exception):  # noqa: BLE001 - any send failure ends the link
                    link.abort()
        except ConnectionClosed:
            pass
        finally:
            self._finish(link)

    def _finish(self, link: Link) -> None:
        """Let the close handshake end, then make sure the TCP connection ends too."""
        thread = link.ws.thread
        if thread.is_alive():
            thread.join(timeout=CLOSE_TIMEOUT)
        if thread.is_alive():
            link.abort()
            thread.join(timeout=CLOSE_TIMEOUT)

    def dispatch(self, outbound: list[Outbound]) -> None:
        """Serialise each frame once and write it to every target that is still here."""
        links = self.links
        for item in outbound:
            text = _dumps(item.message)
            if self.delay:
                gevent.sleep(self.delay)
            for target in item.targets:
                link = links.get(target)
                if link is not None:
                    link.send_text(text)

    # -- timers -----------------------------------------------------------

    def _token_timer(self, link: Link) -> None:
        while not link.dead:
            remaining = link.conn.token_exp - time.time()
            if remaining > 0 or self.hub.faults.accept_expired_tokens:
                if remaining <= 0:
                    return
                gevent.sleep(remaining)
                continue
            link.close(CLOSE_TOKEN_EXPIRED, "token expired")
            return

    def _ensure_loop(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._housekeeping)

    def _housekeeping(self) -> None:
        """Heartbeat pings, heartbeat timeouts and queue expiry, for all links at once."""
        settings = self.settings
        interval, timeout = settings.heartbeat_interval, settings.heartbeat_timeout
        tick = min(1.0, max(0.01, min(interval, timeout) / 4))
        next_sweep = 0.0
        skip = self.hub.faults.skip_heartbeat
        while not self.stopping:
            gevent.sleep(tick)
            now = time.monotonic()
            if not skip:
                for link in list(self.links.values()):
                    self._beat(link, now, interval, timeout)
            if now >= next_sweep:
                self.hub.sweep(time.time())
                next_sweep = now + min(1.0, settings.queue_ttl / 4)

    def _beat(self, link: Link, now: float, interval: float, timeout: float) -> None:
        if link.dead:
            return
        if link.ping_sent_at is not None:
            if link.ws.pong_received:
                link.ping_sent_at = None
            elif now - link.ping_sent_at > timeout:
                self.hub.heartbeat_timeout()
                gevent.spawn(link.close, CLOSE_HEARTBEAT, "heartbeat timeout")
                return
        if link.ping_sent_at is None and now >= link.next_ping:
            link.ws.pong_received = False
            link.ping_sent_at = now
            link.next_ping = now + interval
            gevent.spawn(link.ping)

    def close_all(self) -> None:
        """Server shutdown: close every connection with 1001."""
        self.stopping = True
        links = list(self.links.values())
        closers = [gevent.spawn(link.close, CLOSE_GOING_AWAY, "server shutting down") for link in links]
        gevent.joinall(closers, timeout=CLOSE_TIMEOUT + 1)
