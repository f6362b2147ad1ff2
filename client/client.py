"""The protocol-free client: a transport, an adapter session, replies matched, events fired.

`Client` moves frames between `client/transport.py` and an adapter's session
(`client/adapter.py`). This module is its settings and the life of each connection: the
upgrade, the start-up it waits for (`Ready`), the close. What arrives is
`client/receiving.py` (events dispatched, replies matched, pushes kept); what its caller
sends is `client/operations.py` (request, publish, subscribe, each reported to Locust by
`client/reporting.py`); the attributes they share are `client/client_base.py`. It knows no
message format: that is the adapter's; nor URLs (`client/urls.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from time import perf_counter
from types import MappingProxyType
from typing import Any

from client.adapter import Adapter, AdapterSession, Delivery, Failed, Ready, SessionContext, as_session
from client.client_base import LOCK
from client.errors import ConnectionClosed, SocketproofError, Timeout
from client.hooks import ConnectionHooks
from client.operations import Operations
from client.receiving import Receiving
from client.recording import Recording
from client.reporting import Reporter
from client.transport import HandshakeResponse, State, Transport
from client.urls import has_path, normalize_url, upgrade_url
from client.waiting import new_slot

_NONE: tuple[Any, ...] = ()
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The shared empty mapping (no headers, no query, no start-up extras)."""


@functools.lru_cache(maxsize=32)
def _headerless(status: int, subprotocol: str | None) -> HandshakeResponse:
    """A forgotten upgrade answer: status and subprotocol stay, headers go; shared."""
    return HandshakeResponse(status, MappingProxyType({}), subprotocol)  # type: ignore[arg-type]


class Client(Receiving, Operations):
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
        self._pending = None  # types and meanings: client/client_base.py
        self._inbox = None
        self._transport = None
        self._start_slot = None
        self._early = None

    # -- state ---------------------------------------------------------------------

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
        with LOCK:
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

