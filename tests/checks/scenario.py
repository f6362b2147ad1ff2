"""Builds histories for the check tests through the real Recorder (no hand-made fields).

`Run` drives the `client.hooks.ConnectionHooks` the client calls, with explicit times; its
Recorder folds like a run's (checks.fold.fold) unless given `fold=None`.
"""
from __future__ import annotations

from typing import Any

from checks.fold import fold
from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    RESUME,
    ROUND_TRIP,
    SERVER_SEQ,
    SERVER_STATS,
    VERSIONED_STATE,
    ResumeInfo,
    Stamp,
)
from client.recorder import ConnectionRecorder, Recorder
from history import History

SOCKETPROOF = frozenset({ROUND_TRIP, PUBLISH_ACK, SERVER_SEQ, RESUME, VERSIONED_STATE, SERVER_STATS, HEARTBEAT})
"""What the socketproof adapter declares."""
ACKED = frozenset({PUBLISH_ACK})
"""Socket.IO / GraphQL-like: stamps, acknowledged publishes, no seqs."""
PLAIN = frozenset()
"""A custom JSON broadcast: stamps only."""


class Run:
    def __init__(self, caps: frozenset[str] = PLAIN, adapter: str = "custom", process: str = "w1",
                 **recorder: Any) -> None:
        recorder.setdefault("fold", fold)
        self.rec = Recorder(process, adapter=adapter, capabilities=caps, **recorder)
        self.rec.started_at = 0.0
        self.caps = caps
        self.counters: dict[tuple[str, str], int] = {}
        self.seqs: dict[str, int] = {}

    def open(self, label: str, user: str | None = None, channels: tuple[str, ...] = (), t: float = 1.0,
             heartbeat: tuple[float, float] | None = None, resume: ResumeInfo | None = None,
             hooks: ConnectionRecorder | None = None) -> ConnectionRecorder:
        c = hooks or self.rec.connection(user or label, label)
        c.opened(t, conn_id=label.upper(), channels=channels, heartbeat=heartbeat, resume=resume,
                 capabilities=self.caps)
        return c

    def publish(self, sender: ConnectionRecorder, label: str, channel: str, t: float, *,
                ack: bool = True, fail: str | None = None) -> tuple[Stamp, int | None]:
        """A publish (acked, refused, or neither); returns its stamp and server seq."""
        n = self.counters[(label, channel)] = self.counters.get((label, channel), 0) + 1
        stamp = Stamp(label, channel, n, t)
        sender.published(stamp, t)
        seq = None
        if fail is not None:
            sender.publish_failed(stamp, fail, t + 0.01)
        elif ack or SERVER_SEQ in self.caps:
            if SERVER_SEQ in self.caps:
                seq = self.seqs[channel] = self.seqs.get(channel, 0) + 1
            if ack and PUBLISH_ACK in self.caps:
                sender.acked(stamp, seq, t + 0.01)
        return stamp, seq

    @staticmethod
    def deliver(receiver: ConnectionRecorder, stamp: Stamp | None, seq: int | None, t: float,
                channel: str | None = None) -> None:
        receiver.delivered(channel or stamp.channel, stamp, seq, None, t)

    def broadcast(self, sender: ConnectionRecorder, label: str, channel: str, receivers: list, t: float,
                  skip: dict | None = None) -> Stamp:
        """Publish and deliver to every receiver (except receivers[i] when skip says so)."""
        stamp, seq = self.publish(sender, label, channel, t)
        for i, r in enumerate(receivers):
            if not (skip and stamp.counter in skip.get(i, ())):
                self.deliver(r, stamp, seq, t + 0.05)
        return stamp

    def history(self, complete: bool = True, end: float = 10.0) -> History:
        self.rec.finish(complete, t=end)
        return self.rec.history()
