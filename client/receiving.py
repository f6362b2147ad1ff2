"""What arrives on a connection: each message's events dispatched, start-up, pings, the end.

The transport calls `message_received`, `ping_received` and `connection_lost` (its
`Listener`, client/transport.py). The adapter's session turns each message into events
(client/adapter.py): a `Reply` wakes the request waiting for it (client/operations.py), a
`Delivery` goes to `on_delivery`, `Ready` completes `connect()`, `Failed` ends the start-up
or the connection, and what nobody waits for lands in the push inbox (client/inbox.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from client.adapter import Delivery, Failed, Frame, KeepAlive, Push, Ready, Reply, Send, StateChange
from client.client_base import LOCK, ClientBase
from client.errors import ConnectionClosed, SocketproofError
from client.inbox import Inbox
from client.reporting import wire_length
from client.transport import State

log = logging.getLogger("client.client")  # the name it had before the split: log settings keep working


class Receiving(ClientBase):
    """The inbound half of `Client`: the transport's listener and the push inbox."""

    @property
    def pushes_dropped(self) -> int:
        """Unread pushes the full inbox dropped (oldest first)."""
        return self._inbox.dropped if self._inbox is not None else 0

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
        with LOCK:
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
            with LOCK:
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
