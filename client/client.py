"""The protocol-free client: a transport, an adapter session, replies matched, events fired.

`Client` moves frames between `client/transport.py` and an adapter's session
(`client/adapter.py`): it waits for start-up (`Ready`), matches each `Reply` to the
request waiting for it by correlation key, hands deliveries and other pushes on, fires
Locust's request event with the true round trip (like locust/contrib/mqtt.py), and
tells the history recorder (`client/hooks.py`) what happened. It knows no message
format: that is the adapter's.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from time import perf_counter
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from client.adapter import (
    Adapter,
    AdapterSession,
    Delivery,
    Failed,
    Frame,
    KeepAlive,
    Push,
    Ready,
    Reply,
    Send,
    SessionContext,
    Stamp,
    StateChange,
)
from client.errors import ConnectionClosed, SocketproofError, Timeout
from client.hooks import ConnectionHooks
from client.transport import HandshakeResponse, State, Transport
from client.waiting import GreenSlot, Slot, new_slot

log = logging.getLogger(__name__)

REQUEST_TYPE = "WS"
"""Locust `request_type` of everything the client reports."""
INBOX_LIMIT = 10_000
"""Unread pushes kept; beyond it the oldest is dropped and counted in `pushes_dropped`."""
UNACKED_SUBSCRIBE_GRACE = 1.0
"""A subscribe nothing acknowledges (graphql-transport-ws) counts from this many seconds after
it was sent: the server may register it only after messages published meanwhile, which the
connection then never owed."""
_CLOSED_MARK = object()  # wakes next_push() when the connection ends
_LOCK = threading.Lock()
"""Guards every client's connect/close/inbox moves: none waits inside it, so one lock
serves all and an idle client carries none of its own."""
_NONE: tuple[Any, ...] = ()
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The shared empty mapping (no headers, no query, no start-up extras)."""


@functools.lru_cache(maxsize=32)
def _headerless(status: int, subprotocol: str | None) -> HandshakeResponse:
    """A forgotten upgrade answer: status and subprotocol stay, headers go; shared."""
    return HandshakeResponse(status, MappingProxyType({}), subprotocol)  # type: ignore[arg-type]


def wire_length(frame: Frame) -> int:
    """Bytes on the wire for a message (Locust's response_length): a text frame is UTF-8, so a
    non-ASCII str is longer than its character count. `isascii()` is O(1) on a str."""
    if isinstance(frame, str) and not frame.isascii():
        return len(frame.encode("utf-8", "surrogatepass"))
    return len(frame)


def normalize_url(url: str, default_path: str = "/ws") -> str:
    """Accept ws/wss/http/https; a bare host (Locust's --host) gets `default_path`."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a ws://, wss://, http:// or https:// URL: {url!r}")
    if parts.path in ("", "/"):
        path, _, query = default_path.partition("?")
        query = "&".join(q for q in (query, parts.query) if q)
    else:
        path, query = parts.path, parts.query
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def with_query(url: str, params: dict[str, Any]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


class Client:
    """One connection at a time over any adapter; `connect()` again after it closed."""

    def __init__(
        self,
        url: str,
        adapter: Adapter,
        context: SessionContext,
        *,
        hooks: ConnectionHooks | None = None,
        request_event: Any = None,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`url` is the whole WebSocket URL (a bare host gets the adapter's default path);
        `request_event` is Locust's `environment.events.request` (None: report nothing)."""
        self.url = normalize_url(url, adapter.default_path)
        self._path_given = urlsplit(url.strip()).path not in ("", "/")
        self.adapter = adapter
        self.context = context
        self.hooks = hooks
        self.request_event = request_event
        self.timeout = timeout
        self.headers: Mapping[str, str] = dict(headers) if headers else _NO_EXTRA
        """Sent with every upgrade (replace it to change it: an empty one is shared)."""
        self.ssl_context: Any = None
        """wss:// trust and client certificate (an ssl.SSLContext; None: the system's defaults)."""
        self.origin: str | None = None
        self.query: Mapping[str, str] = _NO_EXTRA
        """Added to every upgrade's query (after the session's own); replace it to change it."""
        self.subprotocols: tuple[str, ...] = ()
        """Offered when the adapter's session fixes none."""
        self.label = context.label
        self.on_delivery: Callable[[Delivery], None] | None = None
        """Where deliveries go (a Locust user's timing); None: to the inbox, as pushes."""
        self.on_push: Callable[[Any], None] | None = None
        """Where other pushes go; None: to the inbox (`next_push`)."""
        self.pushes_dropped = 0
        self.ready: Ready | None = None
        self._session: AdapterSession | None = None
        self._answer_pings = True
        # Made on first use, not here: a Locust process holds thousands of idle clients.
        self._context: dict[str, Any] | None = None  # Locust's request context
        self._pending: dict[Any, Slot | GreenSlot] | None = None  # requests waiting for their reply
        self._inbox: queue.Queue[Any] | None = None
        self._transport: Transport | None = None
        self._start_slot: Slot | GreenSlot | None = None
        self._early: list[Any] | None = None  # events before Ready, recorded once the connection is opened
        self._recorded_open = False
        self._stamps: dict[Any, Stamp] | None = None  # publishes waiting for their ack

    # -- state ---------------------------------------------------------------------

    @property
    def state(self) -> State:
        """OPEN only once start-up completed; CONNECTING until then."""
        transport = self._transport
        if transport is None:
            return State.CLOSED
        state = transport.state
        if state is State.OPEN and self.ready is None:
            return State.CONNECTING
        return state

    @property
    def answer_pings(self) -> bool:
        """False: server ping frames go unanswered (heartbeat tests); kept across reconnects."""
        return self._answer_pings

    @answer_pings.setter
    def answer_pings(self, value: bool) -> None:
        self._answer_pings = value
        if self._transport is not None:
            self._transport.answer_pings = value

    @property
    def adapter_session(self) -> AdapterSession | None:
        """The adapter's state machine for the current connection."""
        return self._session

    @property
    def transport(self) -> Transport | None:
        return self._transport

    @property
    def ping_times(self) -> Any:
        transport = self._transport
        return transport.ping_times if transport is not None else ()

    @property
    def handshake_response(self) -> HandshakeResponse | None:
        transport = self._transport
        return transport.handshake_response if transport is not None else None

    @property
    def conn_id(self) -> Any:
        return self.ready.conn_id if self.ready is not None else None

    # -- connect -------------------------------------------------------------------

    def connect(self, *, query: dict[str, Any] | None = None, origin: str | None = None) -> Ready:
        """Upgrade, send the session's first frames, wait for Ready.

        Raises HandshakeRejected, Timeout, ConnectionClosed, or the session's Failed error
        (e.g. a start-up refusal). Fires `connect` with the time to Ready.
        """
        with _LOCK:
            old = self._transport
            if old is not None and old.state is not State.CLOSED:
                raise SocketproofError(f"connect() while {old.state.value}")
            session = self.adapter.session(self.context)
            transport = Transport(
                timeout=self.timeout,
                label=self.label,
                listener=self,
                ssl_context=self.ssl_context,
            )
            transport.answer_pings = self._answer_pings
            self._session = session
            self.ready = None
            self._early = None
            self._recorded_open = False
            self._transport = transport
            self._start_slot = slot = new_slot()
        handshake = session.handshake()
        url = self.url
        if handshake.path and not self._path_given:  # the session's own path, e.g. with a query
            url = normalize_url(url.split("/", 3)[0] + "//" + urlsplit(url).netloc, handshake.path)
        url = with_query(url, {**handshake.query, **self.query, **(query or {})})
        headers = {**handshake.headers, **self.headers}
        subprotocols = handshake.subprotocols or self.subprotocols
        t0 = perf_counter()
        try:
            response = transport.connect(url, headers, subprotocols, origin or self.origin)
            self._check_negotiated(session, response.subprotocol)
            try:
                for frame in session.start():
                    self._send(transport, frame)
            except ConnectionClosed:  # closed at once: the session may name why (e.g. close 4406)
                if slot.wait(1.0) and slot.error is not None:
                    raise slot.error from None
                raise
            greeting = getattr(session, "ready_without_greeting", None)
            ready_now = greeting() if greeting is not None else None
            if ready_now is not None:  # a protocol whose server says nothing first
                self._on_ready(ready_now, "")
            limit = getattr(session, "start_timeout", None) or self.timeout
            if not slot.wait(limit):
                late = getattr(session, "start_timed_out", None)
                raise (late() if late is not None else None) or Timeout(
                    f"no start-up from the server within {limit:g}s ({self.adapter.name} protocol)")
            if slot.error is not None:
                raise slot.error
        except SocketproofError as exc:
            transport.drop()
            self._fire("connect", t0, 0, None, exc)
            raise
        self._fire("connect", t0, slot.length, response, None)
        return self.ready  # type: ignore[return-value]

    @staticmethod
    def _check_negotiated(session: AdapterSession, subprotocol: str | None) -> None:
        """Ask a session that cares about the server's subprotocol choice; raise its refusal."""
        negotiated = getattr(session, "negotiated", None)
        if negotiated is None:
            return
        answer = negotiated(subprotocol)
        if isinstance(answer, SocketproofError):
            raise answer
        for event in answer or ():
            if isinstance(event, Failed):
                raise event.error

    def forget_start(self) -> None:
        """Drop what the start-up said (welcome, snapshot, replay, response headers) once the
        caller has read it: a Locust user holding thousands of idle connections should not
        carry a parsed welcome each (~2 KB). `ready.heartbeat`, `resume` and `conn_id` stay."""
        ready = self.ready
        if ready is not None:
            ready.info = None
            ready.replayed = _NONE  # type: ignore[assignment]
            ready.extra = _NO_EXTRA  # type: ignore[assignment]
        transport = self._transport
        if transport is not None and transport.handshake_response is not None:
            response = transport.handshake_response
            transport.handshake_response = _headerless(response.status, response.subprotocol)

    # -- inbound -------------------------------------------------------------------

    def message_received(self, frame: Frame, t_recv: float) -> None:
        """The transport's listener (client/transport.py `Listener`): one whole message."""
        session = self._session
        if session is None:
            return
        hooks = self.hooks
        for event in session.receive(frame):
            cls = event.__class__
            if cls is Reply:
                self._on_reply(event, frame, t_recv)  # type: ignore[arg-type]
            elif cls is Delivery:
                self._on_delivery(event)  # type: ignore[arg-type]
            elif cls is Send:
                try:
                    self._send(self._transport, event.frame)  # type: ignore[union-attr, arg-type]
                except SocketproofError:
                    pass  # the read side notices a broken connection
            elif cls is KeepAlive:  # the protocol's own heartbeat: a sign of life like a ping frame
                now = time.time()
                transport = self._transport
                if transport is not None:
                    transport.note_ping(now)
                if hooks is not None:
                    hooks.keepalive(now)
            elif cls is StateChange:
                self._record_state(event)  # type: ignore[arg-type]
            elif cls is Ready:
                self._on_ready(event, frame)  # type: ignore[arg-type]
            elif cls is Failed:
                self._on_failed(event)  # type: ignore[arg-type]
            elif cls is Push:
                if hooks is not None:
                    hooks.frame("in", event.kind)  # type: ignore[attr-defined]
                self._push(event.body)  # type: ignore[attr-defined]

    def _on_reply(self, reply: Reply, frame: Frame, t_recv: float) -> None:
        hooks = self.hooks
        if hooks is not None:
            error = reply.error
            if error is not None:
                hooks.error(str(getattr(error, "code", "error")), time.time())
            try:
                stamp = self._stamps.pop(reply.corr, None) if self._stamps else None
            except TypeError:  # an unhashable id from a custom adapter: not one of our publishes
                stamp = None
            if stamp is not None:
                if error is None:
                    hooks.acked(stamp, reply.seq, time.time())
                else:
                    hooks.publish_failed(stamp, str(getattr(error, "code", "error")), time.time())
        try:
            slot = self._pending.pop(reply.corr, None) if self._pending else None
        except TypeError:  # an unhashable key cannot be one of ours
            slot = None
        if slot is None:
            self._push(reply.body)
            return
        slot.reply = reply
        slot.t_recv = t_recv
        slot.length = wire_length(frame)
        slot.release()

    def _on_delivery(self, delivery: Delivery) -> None:
        if self.ready is None:
            self._hold(delivery)
            return
        hooks = self.hooks
        if hooks is not None:
            stamp = delivery.stamp
            channel = delivery.channel or (stamp.channel if stamp is not None else "")
            hooks.delivered(channel, stamp, delivery.seq, delivery.message_id, time.time())
        on_delivery = self.on_delivery
        if on_delivery is not None:
            try:
                on_delivery(delivery)
            except Exception:
                log.exception("socketproof client %s: on_delivery failed", self.label)
            return
        if not delivery.replay:  # a start-up replay is in Ready.replayed, not the inbox
            self._push(delivery.body)

    def _record_state(self, change: StateChange) -> None:
        if self.ready is None:
            self._hold(change)
            return
        if self.hooks is not None:
            self.hooks.state(change.kind, change.version, change.state, change.patch, change.corr, time.time())

    def _hold(self, event: Any) -> None:
        """Keep an event that came before Ready until the connection is recorded as opened."""
        if self._early is None:
            self._early = []
        self._early.append(event)

    def _on_ready(self, ready: Ready, frame: Frame) -> None:
        hooks = self.hooks
        early, self._early = self._early or (), None
        if hooks is not None:
            hooks.opened(
                time.time(),
                conn_id=ready.conn_id,
                channels=tuple(ready.channels),
                heartbeat=ready.heartbeat,
                resume=ready.resume,
                capabilities=frozenset(self.adapter.capabilities),
            )
            self._recorded_open = True
            for channel in ready.channels:
                hooks.subscribed(channel, time.time())
        self.ready = ready  # OPEN from here on
        for event in early:
            if event.__class__ is Delivery:
                self._on_delivery(event)
            else:
                self._record_state(event)
        slot = self._start_slot
        if slot is not None:
            self._start_slot = None
            slot.length = wire_length(frame)
            slot.release()

    def _on_failed(self, failed: Failed) -> None:
        slot = self._start_slot
        transport = self._transport
        if slot is not None:
            self._start_slot = None
            slot.error = failed.error
            slot.release()
        elif transport is not None:
            log.warning("socketproof client %s: %s", self.label, failed.error)
        if transport is not None:
            transport.drop()

    def ping_received(self, t: float) -> None:
        if self.hooks is not None:
            self.hooks.keepalive(t)

    def connection_lost(self, code: int | None, reason: str, initiator: str) -> None:
        """The transport ended: record it, fail every waiter, wake next_push()."""
        session = self._session
        error: SocketproofError = ConnectionClosed(code, reason)
        closed = getattr(session, "closed", None)
        if closed is not None:
            named = closed(code, reason)  # an adapter that names its close codes
            if named is not None:
                error = named
        with _LOCK:
            waiting, self._pending = self._pending or {}, None
            pending = list(waiting.values())
            waiting.clear()
            slot, self._start_slot = self._start_slot, None
        if self.hooks is not None and self._recorded_open:
            self._recorded_open = False
            self.hooks.closed(code, reason, initiator, time.time())
        stamps, self._stamps = self._stamps or {}, None
        for stamp in stamps.values():
            if self.hooks is not None:
                self.hooks.publish_failed(stamp, "closed", time.time())
        for waiter in ([slot] if slot is not None else []) + pending:
            waiter.error = error
            try:
                waiter.release()
            except RuntimeError:
                pass
        self._box().put_nowait(_CLOSED_MARK)

    # -- pushes --------------------------------------------------------------------

    def _box(self) -> queue.Queue[Any]:
        """The inbox, made on first use (a Queue is ~2.6 KB per idle connection)."""
        inbox = self._inbox
        if inbox is None:
            with _LOCK:
                inbox = self._inbox
                if inbox is None:
                    inbox = self._inbox = queue.Queue()
        return inbox

    def _push(self, body: Any) -> None:
        on_push = self.on_push
        if on_push is not None:
            try:
                on_push(body)
            except Exception:
                log.exception("socketproof client %s: on_push failed", self.label)
            return
        inbox = self._box()
        if inbox.qsize() >= INBOX_LIMIT:
            try:
                inbox.get_nowait()
                self.pushes_dropped += 1
            except queue.Empty:
                pass
        inbox.put_nowait(body)

    def next_push(self, timeout: float | None = None) -> Any:
        """The next frame nobody was waiting for. Raises Timeout, or ConnectionClosed once
        the connection is closed and the inbox is empty."""
        limit = self.timeout if timeout is None else timeout
        deadline = perf_counter() + limit
        while True:
            try:
                body = self._box().get(timeout=max(0.0, deadline - perf_counter()))
            except queue.Empty:
                raise Timeout(f"no push within {limit}s") from None
            if body is not _CLOSED_MARK:
                return body
            if self.state is State.CLOSED:
                self._box().put_nowait(_CLOSED_MARK)  # keep it for the next caller
                raise self._close_info()
            # a mark left by an earlier connection: skip it

    def drain_pushes(self) -> list[Any]:
        """Every push received so far, without waiting."""
        out: list[Any] = []
        while True:
            try:
                body = self._box().get_nowait()
            except queue.Empty:
                return out
            if body is not _CLOSED_MARK:
                out.append(body)
            elif self.state is State.CLOSED:
                self._box().put_nowait(body)
                return out

    # -- operations ----------------------------------------------------------------

    def request(
        self,
        name: str,
        body: Any = None,
        timeout: float | None = None,
        *,
        report_as: str | None = None,
        expected_errors: tuple[str, ...] = (),
    ) -> Any:
        """A request/reply round trip through the adapter; returns the reply's body.

        Raises the reply's error (ProtocolError...), Timeout or ConnectionClosed. An error
        whose code is in `expected_errors` is an answer, not a failure.
        """
        session = self._open_session()
        corr, frame = session.request(name, body)
        return self._round_trip(corr, frame, report_as or name, timeout, expected_errors).body

    def publish(
        self, channel: str, stamp: Stamp, payload: str, timeout: float | None = None,
        *, expected_errors: tuple[str, ...] = (),
    ) -> Any:
        """Publish a stamped payload; with an ack, wait for it (the `publish` time). A refusal
        whose code is in `expected_errors` (e.g. `queue_full`) is an answer: the stamp is
        then owed to nobody, and the request counts as a success."""
        session = self._open_session()
        corr, frame = session.publish(channel, stamp, payload)
        hooks = self.hooks
        if hooks is not None:
            hooks.published(stamp, time.time())
        if corr is None:
            t0 = perf_counter()
            try:
                self._send(self._transport, frame)
            except SocketproofError as exc:
                if hooks is not None:
                    hooks.publish_failed(stamp, "send_failed", time.time())
                self._fire("publish", t0, 0, None, exc)
                raise
            self._fire("publish", t0, len(frame), None, None)
            return None
        if self._stamps is None:
            self._stamps = {}
        self._stamps[corr] = stamp
        try:
            return self._round_trip(corr, frame, "publish", timeout, expected_errors).body
        except SocketproofError as exc:
            stamp = self._stamps.pop(corr, None) if self._stamps else None
            if stamp is not None and hooks is not None:
                hooks.publish_failed(stamp, getattr(exc, "code", None) or type(exc).__name__, time.time())
            raise

    def subscribe(self, channel: str, timeout: float | None = None) -> Any:
        """Join a channel; with an ack, wait for it (the `subscribe` time)."""
        session = self._open_session()
        corr, frame = session.subscribe(channel)
        if corr is None:
            t0 = perf_counter()
            self._send_or_fire("subscribe", t0, frame)
            result = None
            since = time.time() + UNACKED_SUBSCRIBE_GRACE
        else:
            result = self._round_trip(corr, frame, "subscribe", timeout, ()).body
            since = time.time()
        if self.hooks is not None:
            self.hooks.subscribed(channel, since)
        return result

    def send_frame(self, frame: Frame) -> None:
        """Send a frame as it is (tests: bad input, protocol messages with no reply)."""
        transport = self._transport
        if transport is None:
            raise ConnectionClosed(None, "not connected")
        self._send(transport, frame)

    def _send_or_fire(self, name: str, t0: float, frame: Frame) -> None:
        try:
            self._send(self._transport, frame)
        except SocketproofError as exc:
            self._fire(name, t0, 0, None, exc)
            raise
        self._fire(name, t0, len(frame), None, None)

    def _open_session(self) -> AdapterSession:
        session = self._session
        if session is None or self.state is not State.OPEN:
            raise self._not_open()
        return session

    def _round_trip(
        self, corr: Any, frame: Frame, name: str, timeout: float | None, expected_errors: tuple[str, ...]
    ) -> Reply:
        pending = self._pending
        if pending is None:
            pending = self._pending = {}
        if corr in pending:
            raise ValueError(f"request id {corr!r} is already pending")
        slot = new_slot()
        pending[corr] = slot
        t0 = perf_counter()
        transport = self._transport
        if transport is None or transport.state is not State.OPEN:  # checked after registering
            pending.pop(corr, None)
            self._failed(name, t0, self._not_open())
        hooks = self.hooks
        if hooks is not None:
            hooks.frame("out", name)
        try:
            self._send(transport, frame)  # type: ignore[arg-type]
        except SocketproofError as exc:
            pending.pop(corr, None)
            self._failed(name, t0, exc)
        if not slot.wait(self.timeout if timeout is None else timeout):
            if pending.pop(corr, None) is not None or not slot.wait(1.0):
                self._failed(name, t0, Timeout(f"no reply to {name!r} id={corr!r}"))
        reply: Reply | None = slot.reply
        if reply is None:
            error = slot.error
            self._failed(name, t0, error if isinstance(error, SocketproofError) else ConnectionClosed(None, ""))
        exc = reply.error  # type: ignore[union-attr]
        if exc is not None and getattr(exc, "code", None) in expected_errors:
            exc = None
        event = self.request_event
        if event is not None:
            event.fire(
                request_type=REQUEST_TYPE,
                name=name,
                response_time=(slot.t_recv - t0) * 1000.0,
                response_length=slot.length,
                response=reply.body,  # type: ignore[union-attr]
                exception=exc,
                context=self._context or self._request_context(),
            )
        if exc is not None:
            raise exc
        return reply  # type: ignore[return-value]

    def _request_context(self) -> dict[str, Any]:
        self._context = {"label": self.label}
        return self._context

    def _failed(self, name: str, t0: float, exc: SocketproofError) -> Any:
        self._fire(name, t0, 0, None, exc)
        raise exc

    def _fire(self, name: str, t0: float, length: int, response: Any, exc: BaseException | None) -> None:
        event = self.request_event
        if event is not None:
            event.fire(
                request_type=REQUEST_TYPE,
                name=name,
                response_time=(perf_counter() - t0) * 1000.0,
                response_length=length,
                response=response,
                exception=exc,
                context=self._context or self._request_context(),
            )

    @staticmethod
    def _send(transport: Transport | None, frame: Frame) -> None:
        if transport is None:
            raise ConnectionClosed(None, "not connected")
        transport.send(frame)

    def _not_open(self) -> ConnectionClosed:
        transport = self._transport
        if transport is None:
            return ConnectionClosed(None, "not connected")
        if transport.state is State.CLOSED:
            return self._close_info()
        return ConnectionClosed(None, f"connection is {self.state.value}")

    def _close_info(self) -> ConnectionClosed:
        transport = self._transport
        return transport.close_info if transport is not None else ConnectionClosed(None, "not connected")

    # -- closing -------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> ConnectionClosed:
        """Clean close: the session's goodbye frames, then the close handshake."""
        transport = self._transport
        if transport is None:
            return ConnectionClosed(None, "not connected")
        session = self._session
        if session is not None and transport.state is State.OPEN and self.ready is not None:
            for frame in session.goodbye():
                try:
                    transport.send(frame)
                except SocketproofError:
                    break
        return transport.close(code, reason)

    def drop(self) -> None:
        """Abrupt end: no close frame (a crashed client)."""
        transport = self._transport
        if transport is not None:
            transport.drop()

    def wait_closed(self, timeout: float | None = None) -> ConnectionClosed:
        transport = self._transport
        if transport is None:
            return ConnectionClosed(None, "not connected")
        return transport.wait_closed(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        state = self.state
        if state is State.OPEN:
            self.close()
        elif state is not State.CLOSED:
            self.drop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.adapter.name} {self.label} {self.url} {self.state.value}>"

