"""What the client tells the history recorder, one connection at a time.

`client/client.py` calls these hooks on the `ConnectionHooks` it was given (one per
connection: `Recorder.connection(identity, label)` in client/recorder.py). They record
and never judge: the checks in checks/ find the anomalies. They run for every frame, so
an implementation takes no lock and allocates nothing on the normal path; times are
`time.time()` seconds.
"""

from __future__ import annotations

from typing import Any, Protocol

from client.adapter import ResumeInfo, Stamp


class ConnectionHooks(Protocol):
    def opened(
        self,
        t: float,
        *,
        conn_id: Any,
        channels: tuple[str, ...],
        heartbeat: tuple[float, float] | None,
        resume: ResumeInfo | None,
        capabilities: frozenset[str],
        heartbeat_kind: str | None = None,
    ) -> None:
        """Start-up completed (Ready). A hook object may be reused by a client that
        reconnects: an `opened` after a `closed` starts a new connection history.
        `heartbeat_kind` is passed only when not STEADY (client/adapter.py)."""

    def subscribed(self, channel: str, t: float) -> None:
        """The connection receives `channel` from now on (explicit SUBSCRIBE ack, or sent)."""

    def published(self, stamp: Stamp, t: float) -> None:
        """A stamped message left this connection."""

    def acked(self, stamp: Stamp, seq: int | None, t: float) -> None:
        """The server acknowledged `stamp` (PUBLISH_ACK); `seq`: its number on the channel (SERVER_SEQ)."""

    def publish_failed(self, stamp: Stamp, code: str, t: float) -> None:
        """The publish was refused or timed out: its stamp is not owed to anyone."""

    def delivered(self, channel: str, stamp: Stamp | None, seq: int | None, message_id: Any, t: float) -> None:
        """A message arrived on `channel` (stamp None: no stamp in it; seq None: no server seq).
        `message_id`: the adapter's id for it; for an unstamped one without, the client's hash
        of its body (history.messages.content_key); None when there is neither."""

    def keepalive(self, t: float) -> None:
        """A heartbeat from the server: a WebSocket ping frame or the protocol's own ping."""

    def state(self, kind: str, version: Any, state: Any, patch: Any, corr: Any, t: float) -> None:
        """A StateChange (VERSIONED_STATE): "snapshot", "patch", or "ack" of our update `corr`."""

    def update_sent(self, corr: Any, patch: Any, t: float) -> None:
        """We sent a state update (its ack comes as state("ack", ..., corr=corr))."""

    def frame(self, direction: str, kind: str) -> None:
        """Count one frame by direction ("in"/"out") and kind (bounded number of kinds)."""

    def error(self, code: str, t: float) -> None:
        """An error from the server (bounded number of distinct codes)."""

    def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None:
        """The connection ended; initiator: "client", "server" or "abrupt"."""


class NoHooks:
    """Every hook, doing nothing: subclass it to watch only some (tests)."""

    def opened(self, t: float, **info: Any) -> None: ...
    def subscribed(self, channel: str, t: float) -> None: ...
    def published(self, stamp: Stamp, t: float) -> None: ...
    def acked(self, stamp: Stamp, seq: int | None, t: float) -> None: ...
    def publish_failed(self, stamp: Stamp, code: str, t: float) -> None: ...
    def delivered(self, channel: str, stamp: Stamp | None, seq: int | None, message_id: Any, t: float) -> None: ...
    def keepalive(self, t: float) -> None: ...
    def state(self, kind: str, version: Any, state: Any, patch: Any, corr: Any, t: float) -> None: ...
    def update_sent(self, corr: Any, patch: Any, t: float) -> None: ...
    def frame(self, direction: str, kind: str) -> None: ...
    def error(self, code: str, t: float) -> None: ...
    def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None: ...
