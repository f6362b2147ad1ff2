"""What a client tells the history recorder, from the adapter's events.

`client/client.py` hands a `Recording` what happened on its connection (Ready, a Reply, a
Delivery, a StateChange, a publish, the close); the Recording turns each into the
`ConnectionHooks` calls it means (client/hooks.py) and keeps the one thing the history needs
across them: the publishes still waiting for their ack, by correlation key, so that an ack,
a refusal or the close records what became of each stamp. No I/O; times are `time.time()`.
A client without hooks has no Recording and keeps nothing.
"""

from __future__ import annotations

import time
from typing import Any

from client.adapter import STEADY, Delivery, Ready, Reply, Stamp, StateChange
from client.hooks import ConnectionHooks
from history.messages import content_key


def error_code(error: Any) -> str:
    """The code an error is recorded by (`error` when it has none)."""
    return str(getattr(error, "code", "error"))


class Recording:
    """One client's history hooks, fed event by event (reused across its reconnects)."""

    __slots__ = ("hooks", "_open", "_stamps")

    def __init__(self, hooks: ConnectionHooks) -> None:
        self.hooks = hooks
        self._open = False  # `opened` recorded, `closed` not yet
        self._stamps: dict[Any, Stamp] | None = None  # publishes waiting for their ack

    def connecting(self) -> None:
        """A new connection starts: nothing of it is recorded yet."""
        self._open = False

    def opened(self, ready: Ready, capabilities: frozenset[str]) -> None:
        """Start-up completed: the connection, then the channels it receives without subscribing."""
        hooks = self.hooks
        hooks.opened(
            time.time(),
            conn_id=ready.conn_id,
            channels=tuple(ready.channels),
            heartbeat=ready.heartbeat,
            resume=ready.resume,
            capabilities=capabilities,
            **({} if ready.heartbeat_kind == STEADY else {"heartbeat_kind": ready.heartbeat_kind}),
        )
        self._open = True
        for channel in ready.channels:
            hooks.subscribed(channel, time.time())

    def replied(self, reply: Reply) -> None:
        """A reply: its error, and what became of the publish it answers, if it answers one."""
        hooks = self.hooks
        error = reply.error
        if error is not None:
            hooks.error(error_code(error), time.time())
        try:
            stamp = self._stamps.pop(reply.corr, None) if self._stamps else None
        except TypeError:  # an unhashable id from a custom adapter: not one of our publishes
            stamp = None
        if stamp is not None:
            if error is None:
                hooks.acked(stamp, reply.seq, time.time())
            else:
                hooks.publish_failed(stamp, error_code(error), time.time())

    def delivered(self, delivery: Delivery) -> None:
        stamp = delivery.stamp
        channel = delivery.channel or (stamp.channel if stamp is not None else "")
        message_id = delivery.message_id
        if message_id is None and stamp is None and delivery.body is not None:  # known by its content
            message_id = content_key(delivery.body)
        self.hooks.delivered(channel, stamp, delivery.seq, message_id, time.time())

    def state(self, change: StateChange) -> None:
        self.hooks.state(change.kind, change.version, change.state, change.patch, change.corr, time.time())

    def published(self, stamp: Stamp) -> None:
        """A stamped message is about to leave."""
        self.hooks.published(stamp, time.time())

    def awaiting_ack(self, corr: Any, stamp: Stamp) -> None:
        """The publish `corr` waits for its ack (PUBLISH_ACK adapters)."""
        if self._stamps is None:
            self._stamps = {}
        self._stamps[corr] = stamp

    def publish_failed(self, stamp: Stamp, code: str) -> None:
        self.hooks.publish_failed(stamp, code, time.time())

    def unanswered(self, corr: Any, error: BaseException) -> None:
        """The publish `corr` ended without an ack (a timeout, the close): unless its reply
        already said so, its stamp is owed to nobody."""
        stamp = self._stamps.pop(corr, None) if self._stamps else None
        if stamp is not None:
            self.hooks.publish_failed(stamp, getattr(error, "code", None) or type(error).__name__, time.time())

    def closed(self, code: int | None, reason: str, initiator: str) -> None:
        """The connection ended: recorded once, then every publish still waiting failed."""
        hooks = self.hooks
        if self._open:
            self._open = False
            hooks.closed(code, reason, initiator, time.time())
        stamps, self._stamps = self._stamps or {}, None
        for stamp in stamps.values():
            hooks.publish_failed(stamp, "closed", time.time())
