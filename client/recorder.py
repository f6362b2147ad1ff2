"""Recorder: what the client sees, written into a `history.History` (version 2).

It records and never judges: the checks in checks/ find duplicates, reorders, losses; it
imports none of them (the run hands it the fold function, see below).
`Recorder.connection(identity, label)` gives the client one `ConnectionRecorder` per
connection, which implements `client.hooks.ConnectionHooks`. The hooks run for every
frame, so they take no lock and allocate nothing on the normal path (an in-order arrival
extends its run in place); the shared picture is assembled in `Recorder.history()`.
A hooks object reused by a reconnecting client starts a new ConnectionHistory with the
first event after a `closed`.

Memory is bounded whatever the server sends:
- per stream at most RUN_CAP arrival runs and per connection RUN_BUDGET (`Arrivals.add`,
  given what is left of the budget), per connection at most CHANNEL_CAP channels and
  STREAM_CAP sender streams (later deliveries counted in `untracked`), frames and
  errors at most KEY_CAP distinct keys (then "_other"), acks/failures/holes at most
  RANGE_CAP ranges per set (then counted in `overflow`), state changes RUN_CAP runs, and
  at most INFLIGHT_CAP state updates awaiting their ack;
- unstamped deliveries with an identity (`message_id`: the adapter's, or the client's hash
  of the body): a `MessageLog` per channel, made on the first one (an idle connection has
  none), 12 bytes a message, at most LOG_CAP per channel and LOG_BUDGET per connection
  (history.messages; later ones only counted in the log's `truncated`);
- publish records: one per (sender, channel), at most PUBLISH_CAP per process (the
  publishes of any further pair are only counted in `published_overflow`);
- connections: every open connection is kept; of the closed ones the latest
  `keep_closed` are kept whole, and older ones are handed to the `fold` function the
  Recorder was given (a run gives checks.fold.fold), which writes their evidence into
  `History.folded`: their self-contained anomalies as evidence samples (order,
  duplicates, seq holes, state versions), their stamp holes merged per (sender, channel)
  for the loss check, their highest seq per channel (server-restart eras) and the
  heartbeat facts of the most irregular ones. What folding gives up: tab divergence
  (seq -> id maps) and per-connection detail of clean connections. Without a `fold`
  function nothing is folded and nothing dropped: every closed connection is kept whole,
  so memory grows with the number of connections (fine for tests and short runs).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from client.adapter import STEADY, ResumeInfo, Stamp
from history import (
    KEY_CAP,
    LOG_BUDGET,
    OTHER,
    RUN_BUDGET,
    RUN_CAP,
    SEQ_ID_CAP,
    AckedSeqs,
    Arrivals,
    ChannelRecord,
    ConnectionHistory,
    Folded,
    History,
    MessageLog,
    PublishRecord,
    message_key,
    state_digest,
)

INFLIGHT_CAP = 10_000
"""State updates awaiting their ack, per connection; the oldest go first."""
CHANNEL_CAP = 32
"""Channels recorded per connection."""
STREAM_CAP = 256
"""Sender streams recorded per connection (over all its channels)."""
SEQ_ID_CHANNELS = 4
"""Channels per connection that keep a seq -> id map (tab divergence)."""
CONNECTION_PUBLISH_CAP = 1_024
"""(sender, channel) publish records per open connection (handed to the Recorder at close)."""
PUBLISH_CAP = 20_000
"""(sender, channel) publish records per process."""
KEEP_CLOSED = 2_000
"""Closed connections kept whole per process; older ones are folded."""
CODE_LEN = 64
"""Longest frame kind / error code kept as a key (longer ones are cut)."""


def _bump_new(d: dict[str, int], key: Any) -> None:
    """Count a key not yet in `d`, within KEY_CAP keys."""
    key = key if type(key) is str else str(key)
    key = key[:CODE_LEN]
    if key in d:
        d[key] += 1
    elif len(d) < KEY_CAP:
        d[key] = 1
    else:
        d[OTHER] = d.get(OTHER, 0) + 1


class ConnectionRecorder:
    """Records one connection (and the next ones, if the client reuses it) into a
    ConnectionHistory; implements `client.hooks.ConnectionHooks`."""

    __slots__ = ("_owner", "h", "_closed", "_state", "_updates", "_pub", "_pub_count",
                 "_pub_overflow", "_acked", "_streams", "_seq_id_channels", "_runs_left", "_log_left")

    def __init__(self, owner: Recorder, identity: str, label: str) -> None:
        self._owner = owner
        self.h = ConnectionHistory(label=label, user=identity, process=owner.process_id)
        self._closed = False
        self._state: dict | None = None
        # made on first use: an idle connection publishes, updates and acks nothing
        self._updates: dict[Any, Any] | None = None
        self._pub: dict[str, dict[str, PublishRecord]] | None = None
        self._pub_count = 0
        self._pub_overflow = 0
        self._acked: dict[str, AckedSeqs] | None = None
        self._streams = 0
        self._seq_id_channels = 0
        self._runs_left = RUN_BUDGET
        self._log_left = LOG_BUDGET

    # -- connection life ------------------------------------------------------
    def _fresh(self) -> None:
        """The first event after a close: a new connection through the same hooks."""
        old = self.h
        self.h = ConnectionHistory(label=old.label, user=old.user, process=old.process)
        self._closed = False
        self._state = None
        self._streams = 0
        self._seq_id_channels = 0
        self._runs_left = RUN_BUDGET
        self._log_left = LOG_BUDGET
        self._owner._reopened(self)

    def opened(self, t: float, *, conn_id: Any, channels: tuple[str, ...],
               heartbeat: tuple[float, float] | None, resume: ResumeInfo | None,
               capabilities: frozenset[str], heartbeat_kind: str | None = None) -> None:
        if self._closed:
            self._fresh()
        h = self.h
        h.opened_at = t
        h.conn_id = conn_id
        h.channels = [str(c) for c in channels]
        if heartbeat is not None:
            h.heartbeat_interval, h.heartbeat_timeout = float(heartbeat[0]), float(heartbeat[1])
            h.heartbeat_kind = heartbeat_kind if heartbeat_kind not in (None, STEADY) else None
        if resume is not None:
            requested, last = resume.requested, resume.server_last
            h.requested_last_seq = requested
            h.welcome_last_seq = last if type(last) is int else None
            h.replay = resume.replay if type(resume.replay) is int else 0
            h.resumed = resume.resumed
            h.gap = list(resume.gap) if resume.gap is not None else None
            if requested is not None and (h.welcome_last_seq is None or requested <= h.welcome_last_seq):
                h.expect_from = requested + 1
            elif h.welcome_last_seq is not None:
                h.expect_from = h.welcome_last_seq - h.replay + 1
        for channel in h.channels:
            record = self._channel(channel)
            if record is not None and record.subscribed_at is None:
                record.subscribed_at = t
        if self._owner.capabilities is None:
            self._owner.capabilities = frozenset(capabilities)

    def subscribed(self, channel: str, t: float) -> None:
        if self._closed:
            self._fresh()
        record = self._channel(channel)
        if record is not None and record.subscribed_at is None:
            record.subscribed_at = t

    def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None:
        if self._closed:
            return
        self._closed = True
        h = self.h
        h.closed_at = t
        h.close_code = code
        h.close_reason = reason
        h.close_initiator = initiator
        if self._state is not None:
            h.state_digest = state_digest(self._state)
        self._state = None
        self._updates = None
        self._owner._closed_one(self)

    # -- publishing -----------------------------------------------------------
    def _record(self, stamp: Stamp) -> PublishRecord | None:
        by_channel = self._pub.get(stamp.sender) if self._pub is not None else None
        if by_channel is not None:
            record = by_channel.get(stamp.channel)
            if record is not None:
                return record
        if self._pub_count >= CONNECTION_PUBLISH_CAP:
            self._pub_overflow += 1
            return None
        self._pub_count += 1
        record = PublishRecord()
        if self._pub is None:
            self._pub = {}
        self._pub.setdefault(stamp.sender, {})[stamp.channel] = record
        return record

    def published(self, stamp: Stamp, t: float) -> None:
        record = self._record(stamp)
        if record is None:
            return
        record.counters.add(stamp.counter)
        if record.first_at is None:
            record.first_at = t
        record.last_at = t

    def acked(self, stamp: Stamp, seq: int | None, t: float) -> None:
        record = self._record(stamp)
        if record is not None:
            record.acked.add(stamp.counter)
        if type(seq) is int:
            by_channel = self._acked
            if by_channel is None:
                by_channel = self._acked = {}
            acked = by_channel.get(stamp.channel)
            if acked is None:
                if len(by_channel) >= CHANNEL_CAP:
                    return
                acked = by_channel[stamp.channel] = AckedSeqs()
            acked.add(seq)

    def publish_failed(self, stamp: Stamp, code: str, t: float) -> None:
        record = self._record(stamp)
        if record is not None:
            record.failed.add(stamp.counter)

    # -- receiving ------------------------------------------------------------
    def _channel(self, channel: str) -> ChannelRecord | None:
        received = self.h.received
        record = received.get(channel)
        if record is None and len(received) < CHANNEL_CAP:
            record = received[channel] = ChannelRecord()
        return record

    def delivered(self, channel: str, stamp: Stamp | None, seq: int | None, message_id: Any,
                  t: float) -> None:
        if self._closed:
            self._fresh()
        h = self.h
        h.deliveries += 1
        record = h.received.get(channel)
        if record is None:
            record = self._channel(channel)
            if record is None:
                h.untracked += 1
                return
        record.deliveries += 1
        if stamp is None:
            record.unstamped += 1
            if message_id is not None:
                log = record.log
                if log is None:
                    log = record.log = MessageLog(t)
                if log.add(message_key(message_id), t, self._log_left > 0):
                    self._log_left -= 1
        else:
            target = record if stamp.channel == channel else self._channel(stamp.channel)
            stream = target.senders.get(stamp.sender) if target is not None else None
            counter = stamp.counter
            if stream is None:
                if target is None or self._streams >= STREAM_CAP:
                    h.untracked += 1
                else:
                    self._streams += 1
                    target.senders[stamp.sender] = Arrivals(counter, t)
            elif stream.add(counter, t, self._runs_left):
                self._runs_left -= 1
        if type(seq) is int:
            stream = record.seqs
            if stream is None:
                record.seqs = Arrivals(seq, t)
                if self._seq_id_channels < SEQ_ID_CHANNELS:
                    self._seq_id_channels += 1
                    record.seq_ids[seq] = _message_id(stamp, message_id)
                else:
                    record.seq_id_stride = 0  # no map for this channel
            else:
                if stream.add(seq, t, self._runs_left):
                    self._runs_left -= 1
                stride = record.seq_id_stride
                if stride and seq % stride == 0:
                    ids = record.seq_ids
                    ids[seq] = _message_id(stamp, message_id)
                    if len(ids) > SEQ_ID_CAP:
                        stride = record.seq_id_stride = stride * 2
                        record.seq_ids = {s: i for s, i in ids.items() if s % stride == 0}

    def keepalive(self, t: float) -> None:
        if self._closed:
            self._fresh()
        h = self.h
        h.pings += 1
        last = h.last_ping_at
        if last is None:
            h.first_ping_at = t
        else:
            d = t - last
            h.ping_interval_sum += d
            if h.ping_interval_min is None or d < h.ping_interval_min:
                h.ping_interval_min = d
            if h.ping_interval_max is None or d > h.ping_interval_max:
                h.ping_interval_max = d
        h.last_ping_at = t

    # -- versioned state ------------------------------------------------------
    def update_sent(self, corr: Any, patch: Any, t: float) -> None:
        if corr is None:
            return
        updates = self._updates
        if updates is None:
            updates = self._updates = {}
        updates[corr] = patch
        if len(updates) > INFLIGHT_CAP:
            try:  # a reader in another thread may pop concurrently: losing one eviction is harmless
                del updates[next(iter(updates))]
            except (RuntimeError, KeyError, StopIteration):
                pass

    def state(self, kind: str, version: Any, state: Any, patch: Any, corr: Any, t: float) -> None:
        if self._closed:
            self._fresh()
        if kind == "snapshot":
            new = dict(state) if isinstance(state, dict) else {}
            h = self.h
            match = (new == self._state) if (self._state is not None and h.state_runs
                                             and version == h.state_runs[-1][2]) else None
            self._state = new
            self._version("snapshot", version, t, match)
            return
        if kind == "ack":
            updates = self._updates
            if not updates or corr not in updates:
                self.h.unmatched_acks += 1
                return
            patch = updates.pop(corr)
        elif kind != "patch":
            return
        if self._state is None:
            self._state = {}
        if isinstance(patch, dict):
            current = self._state
            for key, value in patch.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
        self._version(kind, version, t, None)

    def _version(self, kind: str, version: Any, t: float, match: bool | None) -> None:
        runs = self.h.state_runs
        if kind != "snapshot" and runs:
            last = runs[-1]
            if type(version) is int and type(last[2]) is int and version == last[2] + 1:
                last[2] = version
                return
        if len(runs) >= RUN_CAP:
            self.h.state_overflow += 1
            return
        runs.append([kind, version, version, t, match])

    # -- counts ---------------------------------------------------------------
    def frame(self, direction: str, kind: str) -> None:
        if self._closed:  # a frame after the close (the close frame itself): not a new connection
            return
        h = self.h
        counts = h.frames_in if direction == "in" else h.frames_out
        if counts is None:
            counts = {}
            if direction == "in":
                h.frames_in = counts
            else:
                h.frames_out = counts
        n = counts.get(kind)
        if n is not None:
            counts[kind] = n + 1
        else:
            _bump_new(counts, kind)

    def error(self, code: str, t: float) -> None:
        if self._closed:
            return
        errors = self.h.errors
        if errors is None:
            errors = self.h.errors = {}
        n = errors.get(code)
        if n is not None:
            errors[code] = n + 1
        else:
            _bump_new(errors, code)

    # -- snapshots ------------------------------------------------------------
    def snapshot(self) -> ConnectionHistory:
        """A copy of the current connection (state digest computed now if still open)."""
        for _ in range(3):  # a hook running in another thread can disturb the copy: retry
            try:
                c = self.h.copy()
                break
            except (RuntimeError, ValueError):
                continue
        else:
            c = self.h.copy()
        if not self._closed and self._state is not None:
            c.state_digest = state_digest(self._state)
        return c

    def take_published(self) -> tuple[dict[str, dict[str, PublishRecord]], dict[str, AckedSeqs], int]:
        """Hand over (and forget) the publish records so far: the owner keeps them."""
        pub, acked, overflow = self._pub or {}, self._acked or {}, self._pub_overflow
        self._pub, self._acked, self._pub_count, self._pub_overflow = None, None, 0, 0
        return pub, acked, overflow


def _message_id(stamp: Stamp | None, message_id: Any) -> Any:
    if message_id is not None:
        return message_id
    return f"{stamp.sender}:{stamp.counter}" if stamp is not None else None


class Recorder:
    """All connections of one process (one Locust worker, or one test).

    `adapter` and `capabilities` name what produced the history (the checks answer
    UNKNOWN for a missing capability, naming the adapter); `capabilities` is taken from
    the first `opened` hook when not given. `server_stats_before/after` and
    `server_connections_before/after/source` are set by whoever reads the server.
    `fold(folded, connection)` folds a closed connection beyond the latest `keep_closed`
    into the summary (checks.fold.fold in a run); None: every closed connection is kept.
    """

    def __init__(self, process_id: str = "local", *, adapter: str | None = None,
                 capabilities: frozenset[str] | None = None, keep_closed: int = KEEP_CLOSED,
                 publish_cap: int = PUBLISH_CAP,
                 fold: Callable[[Folded, ConnectionHistory], None] | None = None) -> None:
        self.process_id = process_id
        self.adapter = adapter
        self.capabilities = None if capabilities is None else frozenset(capabilities)
        self.keep_closed = keep_closed
        self.fold = fold
        self.publish_cap = publish_cap
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.complete = False
        self.server_stats_before: dict | None = None
        self.server_stats_after: dict | None = None
        self.server_connections_before: int | None = None
        self.server_connections_after: int | None = None
        self.server_connections_source: str | None = None
        self._live: dict[int, ConnectionRecorder] = {}
        self._closed: deque[ConnectionHistory] = deque()
        self._published: dict[str, dict[str, PublishRecord]] = {}
        self._published_count = 0
        self._published_overflow = 0
        self._acked: dict[str, AckedSeqs] = {}
        self._folded = Folded()
        self._lock = threading.Lock()  # taken per connection, never per message

    def connection(self, identity: str, label: str) -> ConnectionRecorder:
        """The hooks for one new connection."""
        rec = ConnectionRecorder(self, identity, label)
        with self._lock:
            self._live[id(rec)] = rec
        return rec

    def _reopened(self, rec: ConnectionRecorder) -> None:
        with self._lock:
            self._live[id(rec)] = rec

    def _closed_one(self, rec: ConnectionRecorder) -> None:
        """A connection closed: keep its history, its publish records; fold the oldest."""
        with self._lock:
            self._live.pop(id(rec), None)
            self._closed.append(rec.h)
            self._absorb(rec)
            if self.fold is not None and self.ended_at is None:
                while len(self._closed) > self.keep_closed:
                    self.fold(self._folded, self._closed.popleft())

    def _absorb(self, rec: ConnectionRecorder) -> None:
        pub, acked, overflow = rec.take_published()
        self._published_overflow += overflow
        self._merge_published(self._published, pub, count=True)
        for channel, a in acked.items():
            mine = self._acked.get(channel)
            self._acked[channel] = a if mine is None else mine.merge(a)

    def _merge_published(self, into: dict, pub: dict, count: bool) -> None:
        for sender, channels in pub.items():
            for channel, record in channels.items():
                mine = into.get(sender, {}).get(channel)
                if mine is not None:
                    into[sender][channel] = mine.merge(record)
                elif count and self._published_count >= self.publish_cap:
                    self._published_overflow += record.counters.count() + record.counters.overflow
                else:
                    if count:
                        self._published_count += 1
                    into.setdefault(sender, {})[channel] = record if count else record.copy()

    def finish(self, complete: bool = True, t: float | None = None) -> None:
        """End of run (at `t`, default now): connections still open get open_at_end.
        Call after draining.

        `closed()` hooks that come later (closing at teardown) are still recorded and
        leave open_at_end set.
        """
        with self._lock:
            live = list(self._live.values())
        for rec in live:
            if not rec._closed:
                rec.h.open_at_end = True
        self.ended_at = time.time() if t is None else t
        self.complete = complete

    def history(self) -> History:
        """A snapshot of everything recorded so far.

        Take it from the greenlet that drives the connections, or after `finish()`:
        the hooks write without locks.
        """
        with self._lock:
            live = list(self._live.values())
            closed = [c.copy() for c in self._closed]
            published = {s: {ch: r.copy() for ch, r in chs.items()} for s, chs in self._published.items()}
            acked = {ch: a.copy() for ch, a in self._acked.items()}
            folded = self._folded.copy()
            overflow = self._published_overflow
        for rec in live:
            self._merge_published(published, dict(rec._pub or {}), count=False)
            for channel, a in list((rec._acked or {}).items()):
                mine = acked.get(channel)
                acked[channel] = a.copy() if mine is None else mine.merge(a)
            overflow += rec._pub_overflow
        return History(
            started_at=self.started_at,
            ended_at=self.ended_at,
            complete=self.complete and self.ended_at is not None,
            adapter=self.adapter,
            capabilities=self.capabilities,
            connections=closed + [rec.snapshot() for rec in live],
            published=published,
            published_overflow=overflow,
            acked_seqs=acked,
            folded=folded,
            server_stats_before=self.server_stats_before,
            server_stats_after=self.server_stats_after,
            server_connections_before=self.server_connections_before,
            server_connections_after=self.server_connections_after,
            server_connections_source=self.server_connections_source,
        )
