"""The protocol-free client: a transport, an adapter session, replies matched, events fired.

`Client` moves frames between `client/transport.py` and an adapter's session
(`client/adapter.py`): it waits for start-up (`Ready`), matches each `Reply` to the
request waiting for it by correlation key, hands deliveries and other pushes on, fires
Locust's request event with the true round trip (`client/reporting.py`), and tells the
history recorder (`client/hooks.py`) what happened. It knows no message format: that is
the adapter's; nor URLs (`client/urls.py`), nor the unread pushes (`client/inbox.py`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from time import perf_counter
from types import MappingProxyType
from typing import Any

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
    as_session,
)
from client.errors import ConnectionClosed, SocketproofError, Timeout
from client.hooks import ConnectionHooks
from client.inbox import Inbox
from client.recording import Recording
from client.reporting import Reporter, wire_length
from client.transport import HandshakeResponse, State, Transport
from client.urls import has_path, normalize_url, upgrade_url
from client.waiting import GreenSlot, Slot, new_slot

log = logging.getLogger(__name__)

UNACKED_SUBSCRIBE_GRACE = 1.0
"""A subscribe nothing acknowledges (graphql-transport-ws) counts from this many seconds after
it was sent: the server may register it only after messages published meanwhile, which the
connection then never owed."""
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
        self._path_given = has_path(url)
        self.adapter = adapter
        self.context = context
        self._recording = Recording(hooks) if hooks is not None else None
        self._reporter = Reporter(request_event, context.label)
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
        self.ready: Ready | None = None
        self._session: AdapterSession | None = None
        self._answer_pings = True
        # Made on first use, not here: a Locust process holds thousands of idle clients.
        self._pending: dict[Any, Slot | GreenSlot] | None = None  # requests waiting for their reply
        self._inbox: Inbox | None = None
        self._transport: Transport | None = None
        self._start_slot: Slot | GreenSlot | None = None
        self._early: list[Any] | None = None  # events before Ready, recorded once the connection is opened

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
    def hooks(self) -> ConnectionHooks | None:
        """The history recorder's hooks for this client's connections (client/hooks.py)."""
        return self._recording.hooks if self._recording is not None else None

    @hooks.setter
    def hooks(self, hooks: ConnectionHooks | None) -> None:
        self._recording = Recording(hooks) if hooks is not None else None

    @property
    def request_event(self) -> Any:
        """Locust's `environment.events.request`, fired for every operation (None: nothing)."""
        return self._reporter.event

    @request_event.setter
    def request_event(self, event: Any) -> None:
        self._reporter.event = event

    @property
    def pushes_dropped(self) -> int:
        """Unread pushes the full inbox dropped (oldest first)."""
        return self._inbox.dropped if self._inbox is not None else 0

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
            session = as_session(self.adapter.session(self.context))
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
            if self._recording is not None:
                self._recording.connecting()
            self._transport = transport
            self._start_slot = slot = new_slot()
        handshake = session.handshake()
        params = {**handshake.query, **self.query, **(query or {})}
        url = upgrade_url(self.url, handshake.path, self._path_given, params)
        headers = {**handshake.headers, **self.headers}
        subprotocols = handshake.subprotocols or self.subprotocols
        t0 = perf_counter()
        try:
            response = transport.connect(url, headers, subprotocols, origin or self.origin)
            self._refuse(session.negotiated(response.subprotocol))
            try:
                for frame in session.start():
                    self._send(transport, frame)
            except ConnectionClosed:  # closed at once: the session may name why (e.g. close 4406)
                if slot.wait(1.0) and slot.error is not None:
                    raise slot.error from None
                raise
            ready_now = session.ready_without_greeting()
            if ready_now is not None:  # a protocol whose server says nothing first
                self._on_ready(ready_now, "")
            limit = session.start_timeout or self.timeout
            if not slot.wait(limit):
                raise session.start_timed_out() or Timeout(
                    f"no start-up from the server within {limit:g}s ({self.adapter.name} protocol)")
            if slot.error is not None:
                raise slot.error
        except SocketproofError as exc:
            transport.drop()
            self._reporter.failed("connect", t0, exc)
            raise
        self._reporter.report("connect", t0, slot.length, response, None)
        return self.ready  # type: ignore[return-value]

    @staticmethod
    def _refuse(answer: Any) -> None:
        """Raise the refusal in a session's answer to the server's subprotocol choice, if any."""
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
        recording = self._recording
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
                if recording is not None:
                    recording.hooks.keepalive(now)
            elif cls is StateChange:
                self._record_state(event)  # type: ignore[arg-type]
            elif cls is Ready:
                self._on_ready(event, frame)  # type: ignore[arg-type]
            elif cls is Failed:
                self._on_failed(event)  # type: ignore[arg-type]
            elif cls is Push:
                if recording is not None:
                    recording.hooks.frame("in", event.kind)  # type: ignore[attr-defined]
                self._push(event.body)  # type: ignore[attr-defined]

    def _on_reply(self, reply: Reply, frame: Frame, t_recv: float) -> None:
        recording = self._recording
        if recording is not None:
            recording.replied(reply)
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
        recording = self._recording
        if recording is not None:
            recording.delivered(delivery)
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
        if self._recording is not None:
            self._recording.state(change)

    def _hold(self, event: Any) -> None:
        """Keep an event that came before Ready until the connection is recorded as opened."""
        if self._early is None:
            self._early = []
        self._early.append(event)

    def _on_ready(self, ready: Ready, frame: Frame) -> None:
        early, self._early = self._early or (), None
        if self._recording is not None:
            self._recording.opened(ready, frozenset(self.adapter.capabilities))
        self.ready = ready  # OPEN from here on
        for event in early:
            if event.__class__ is Delivery:
                self._on_delivery(event)
            else:
                self._record_state(event)
        session, transport = self._session, self._transport
        interval = session.tick_interval if session is not None else None
        if interval and transport is not None:
            transport.every(interval, self._tick)
        slot = self._start_slot
        if slot is not None:
            self._start_slot = None
            slot.length = wire_length(frame)
            slot.release()

    def _tick(self) -> None:
        """The session's clock (its keep-alive): whatever it wants sent now."""
        session, transport = self._session, self._transport
        if session is None or transport is None:
            return
        for frame in session.tick():
            try:
                self._send(transport, frame)
            except SocketproofError:
                return  # the read side notices a broken connection

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
        if self._recording is not None:
            self._recording.hooks.keepalive(t)

    def connection_lost(self, code: int | None, reason: str, initiator: str) -> None:
        """The transport ended: record it, fail every waiter, wake next_push()."""
        session = self._session
        named = session.closed(code, reason) if session is not None else None  # the protocol's close codes
        error: SocketproofError = named if named is not None else ConnectionClosed(code, reason)
        with _LOCK:
            waiting, self._pending = self._pending or {}, None
            pending = list(waiting.values())
            waiting.clear()
            slot, self._start_slot = self._start_slot, None
        if self._recording is not None:
            self._recording.closed(code, reason, initiator)
        for waiter in ([slot] if slot is not None else []) + pending:
            waiter.error = error
            try:
                waiter.release()
            except RuntimeError:
                pass
        self._box().mark_closed()

    # -- pushes --------------------------------------------------------------------

    def _box(self) -> Inbox:
        """The inbox, made on first use (a Queue is ~2.6 KB per idle connection)."""
        inbox = self._inbox
        if inbox is None:
            with _LOCK:
                inbox = self._inbox
                if inbox is None:
                    inbox = self._inbox = Inbox()
        return inbox

    def _push(self, body: Any) -> None:
        on_push = self.on_push
        if on_push is not None:
            try:
                on_push(body)
            except Exception:
                log.exception("socketproof client %s: on_push failed", self.label)
            return
        self._box().add(body)

    def next_push(self, timeout: float | None = None) -> Any:
        """The next frame nobody was waiting for. Raises Timeout, or ConnectionClosed once
        the connection is closed and the inbox is empty."""
        return self._box().next(self.timeout if timeout is None else timeout, self._ended)

    def drain_pushes(self) -> list[Any]:
        """Every push received so far, without waiting."""
        return self._box().drain(self._ended)

    def _ended(self) -> ConnectionClosed | None:
        """How the connection ended, or None while it is not closed."""
        return self._close_info() if self.state is State.CLOSED else None

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
        recording = self._recording
        if recording is not None:
            recording.published(stamp)
        if corr is None:
            t0 = perf_counter()
            try:
                self._send(self._transport, frame)
            except SocketproofError as exc:
                if recording is not None:
                    recording.publish_failed(stamp, "send_failed")
                self._reporter.failed("publish", t0, exc)
                raise
            self._reporter.report("publish", t0, len(frame), None, None)
            return None
        if recording is not None:
            recording.awaiting_ack(corr, stamp)
        try:
            return self._round_trip(corr, frame, "publish", timeout, expected_errors).body
        except SocketproofError as exc:
            if recording is not None:
                recording.unanswered(corr, exc)
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
        if self._recording is not None:
            self._recording.hooks.subscribed(channel, since)
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
            self._reporter.failed(name, t0, exc)
            raise
        self._reporter.report(name, t0, len(frame), None, None)

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
        recording = self._recording
        if recording is not None:
            recording.hooks.frame("out", name)
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
        self._reporter.report(name, t0, slot.length, reply.body, exc, slot.t_recv)  # type: ignore[union-attr]
        if exc is not None:
            raise exc
        return reply  # type: ignore[return-value]

    def _failed(self, name: str, t0: float, exc: SocketproofError) -> Any:
        self._reporter.failed(name, t0, exc)
        raise exc

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

