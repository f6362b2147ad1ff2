"""Recorder: turns the frames a protocol client sees into a `checks.history.History`.

The protocol client (client/connection.py) calls one `ConnectionRecorder` per
connection through five hooks: `opened`, `sent`, `received`, `server_ping`, `closed`.
They run for every frame at thousands per second, so they take no locks and
allocate nothing on the normal path: each ConnectionRecorder belongs to one
connection, and the shared picture is only assembled in `Recorder.history()`.
`sent` may run in the sending thread while `received` runs in the reader thread: they
share only the in-flight id dicts, whose single operations are atomic under the GIL.
A reconnect is a new ConnectionRecorder.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from checks.history import (
    SEQ_ID_CAP,
    ConnectionHistory,
    History,
    Samples,
    SeqSet,
    state_digest,
)

INFLIGHT_CAP = 10_000
"""In-flight `send`/`update` ids remembered per connection; the oldest go first."""


class ConnectionRecorder:
    """Records one connection into a ConnectionHistory.

    Meant for one connection; a client that reconnects with the same recorder still gets
    a separate ConnectionHistory per connection (a welcome after a close starts one).
    """

    __slots__ = ("h", "acks", "acked_ids_sample", "_state", "_sends", "_updates",
                 "_on", "_welcomed", "_closed", "_done")

    def __init__(self, user: str, label: str, process: str) -> None:
        self.h = ConnectionHistory(label=label, user=user, process=process)
        self.acks: dict[str, SeqSet] = {}
        self.acked_ids_sample = Samples()
        self._state: dict | None = None
        self._sends: dict[Any, str] = {}
        self._updates: dict[Any, dict] = {}
        self._welcomed = False
        self._closed = False
        self._done: list[ConnectionHistory] = []  # earlier connections of a reused recorder
        self._on: dict[str, Callable[[dict, float], None]] = {
            "message": self._message,
            "ack": self._ack,
            "patch": self._patch,
            "snapshot": self._snapshot,
            "error": self._error,
            "welcome": self._welcome,
        }

    # -- hooks -------------------------------------------------------------
    def opened(self, welcome: dict, requested_last_seq: int | None, t: float) -> None:
        """The welcome arrived; `requested_last_seq` is the ?last_seq we asked for."""
        if self._welcomed and self._closed:  # a reconnect through the same recorder
            old = self.h
            self._done.append(old)
            self.h = ConnectionHistory(label=old.label, user=old.user, process=old.process)
            self._state = None
            self._closed = False
        h = self.h
        self._welcomed = True
        h.opened_at = t
        h.conn_id = welcome.get("conn_id")
        h.requested_last_seq = requested_last_seq
        last = welcome.get("last_seq")
        h.welcome_last_seq = last if isinstance(last, int) else None
        replay = welcome.get("replay")
        h.replay = replay if isinstance(replay, int) else 0
        h.resumed = welcome.get("resumed")
        gap = welcome.get("gap")
        h.gap = [gap.get("from"), gap.get("to")] if isinstance(gap, dict) else None
        if requested_last_seq is not None and (h.welcome_last_seq is None
                                               or requested_last_seq <= h.welcome_last_seq):
            h.expect_from = requested_last_seq + 1
        elif h.welcome_last_seq is not None:
            h.expect_from = h.welcome_last_seq - h.replay + 1
        hb = welcome.get("heartbeat")
        if isinstance(hb, dict):
            h.heartbeat_interval = hb.get("interval")
            h.heartbeat_timeout = hb.get("timeout")

    def sent(self, msg: dict, t: float) -> None:
        """Every protocol message this connection sent."""
        kind = msg.get("type")
        out = self.h.frames_out
        out[kind] = out.get(kind, 0) + 1
        if kind == "send":
            _remember(self._sends, msg.get("id"), msg.get("to"))
        elif kind == "update":
            _remember(self._updates, msg.get("id"), msg.get("patch"))

    def received(self, msg: dict, t: float) -> None:
        """Every protocol frame this connection received (welcome included)."""
        kind = msg.get("type")
        counts = self.h.frames_in
        counts[kind] = counts.get(kind, 0) + 1
        handler = self._on.get(kind)
        if handler is not None:
            handler(msg, t)

    def server_ping(self, t: float) -> None:
        """A WebSocket ping frame from the server."""
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

    def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None:
        """The connection ended; initiator is "client", "server" or "abrupt"."""
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
        self._sends.clear()
        self._updates.clear()

    # -- frame handlers ----------------------------------------------------
    def _welcome(self, msg: dict, t: float) -> None:
        if not self._welcomed or self._closed:  # the client did not call opened()
            self.opened(msg, None, t)

    def _message(self, msg: dict, t: float) -> None:
        h = self.h
        h.messages += 1
        seq = msg.get("seq")
        if type(seq) is not int:
            h.malformed.add({"msg": msg, "t": t})
            return
        mid = msg.get("id")
        if not h.received.add(seq):
            h.duplicates.add({"seq": seq, "id": mid, "t": t})
            return
        last = h.last_seq
        if last is not None and seq < last:
            h.out_of_order.add({"seq": seq, "prev": last, "t": t})
        else:
            h.last_seq = seq
        if type(mid) is str:
            sender, sep, counter = mid.rpartition(":")
            if sep and counter.isdigit():
                n = int(counter)
                prev = h.fifo.get(sender)
                if prev is None or n > prev:
                    h.fifo[sender] = n
                elif n == prev:
                    h.duplicate_ids.add({"seq": seq, "id": mid, "t": t})
                else:
                    h.fifo_violations.add({"sender": sender, "counter": n, "prev": prev,
                                           "seq": seq, "t": t})
        if seq % h.seq_id_stride == 0:
            ids = h.seq_ids
            ids[seq] = mid
            if len(ids) > SEQ_ID_CAP:
                stride = h.seq_id_stride = h.seq_id_stride * 2
                h.seq_ids = {s: i for s, i in ids.items() if s % stride == 0}

    def _ack(self, msg: dict, t: float) -> None:
        mid = msg.get("id")
        seq = msg.get("seq")
        if seq is not None:
            to = self._sends.pop(mid, None)
            if to is None or type(seq) is not int:
                self.h.unmatched_acks += 1
                return
            acked = self.acks.get(to)
            if acked is None:
                acked = self.acks[to] = SeqSet()
            acked.add(seq)
            samples = self.acked_ids_sample
            if len(samples.items) < samples.cap:
                samples.add({"user": to, "seq": seq, "id": mid, "t": t})
            else:
                samples.total += 1
            return
        if "version" in msg:
            patch = self._updates.pop(mid, None)
            if patch is None:
                self.h.unmatched_acks += 1
                return
            self._apply(msg["version"], patch, "ack_version", t)
            return
        self.h.unmatched_acks += 1

    def _patch(self, msg: dict, t: float) -> None:
        self._apply(msg.get("version"), msg.get("patch"), "patch_version", t)

    def _apply(self, version: Any, patch: Any, kind: str, t: float) -> None:
        h = self.h
        if self._state is None or h.version is None:
            h.version_anomalies.add({"kind": "patch_before_snapshot", "version": version, "t": t})
            self._state = {}
        elif version != h.version + 1:
            h.version_anomalies.add({"kind": kind, "version": version,
                                     "expected": h.version + 1, "t": t})
        state = self._state
        if isinstance(patch, dict):
            for key, value in patch.items():
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        if isinstance(version, int):
            h.version = version

    def _snapshot(self, msg: dict, t: float) -> None:
        h = self.h
        version = msg.get("version")
        state = msg.get("state")
        state = dict(state) if isinstance(state, dict) else {}
        if h.version is not None and isinstance(version, int):
            if version < h.version:
                h.version_anomalies.add({"kind": "snapshot_backwards", "version": version,
                                         "prev": h.version, "t": t})
            elif version == h.version and state != self._state:
                h.version_anomalies.add({"kind": "snapshot_mismatch", "version": version,
                                         "t": t})
        self._state = state
        if isinstance(version, int):
            h.version = version

    def _error(self, msg: dict, t: float) -> None:
        code = msg.get("code")
        errors = self.h.errors
        errors[code] = errors.get(code, 0) + 1
        mid = msg.get("id")
        if mid is not None:
            self._sends.pop(mid, None)
            self._updates.pop(mid, None)

    # -- snapshot ----------------------------------------------------------
    def snapshots(self) -> list[ConnectionHistory]:
        """Copies of the histories so far (state digest computed now if still open)."""
        return [h.copy() for h in self._done] + [self._snapshot_current()]

    def _snapshot_current(self) -> ConnectionHistory:
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


def _remember(d: dict, key: Any, value: Any) -> None:
    if key is None:
        return
    d[key] = value
    if len(d) > INFLIGHT_CAP:
        try:  # the reader thread may pop concurrently: losing one eviction is harmless
            del d[next(iter(d))]
        except (RuntimeError, KeyError, StopIteration):
            pass


class Recorder:
    """All connections of one process (one Locust worker, or one test)."""

    def __init__(self, process_id: str = "local") -> None:
        self.process_id = process_id
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.complete = False
        self.server_stats_before: dict | None = None
        self.server_stats_after: dict | None = None
        self._conns: list[ConnectionRecorder] = []
        self._lock = threading.Lock()  # taken per connection, never per message

    def connection(self, user: str, label: str) -> ConnectionRecorder:
        """A recorder for one new connection (a reconnect gets a new one)."""
        rec = ConnectionRecorder(user, label, self.process_id)
        with self._lock:
            self._conns.append(rec)
        return rec

    def finish(self, complete: bool = True) -> None:
        """End of run: connections still open get open_at_end. Call after draining.

        `closed()` hooks that come later (closing at teardown) are still recorded and
        leave open_at_end set.
        """
        with self._lock:
            conns = list(self._conns)
        for rec in conns:
            if not rec._closed:
                rec.h.open_at_end = True
        self.ended_at = time.time()
        self.complete = complete

    def history(self) -> History:
        """A snapshot of everything recorded so far.

        Take it from the thread/greenlet that drives the connections, or after
        `finish()`: it reads state that the hooks write without locks.
        """
        with self._lock:
            conns = list(self._conns)
        acks: dict[str, SeqSet] = {}
        sample = Samples()
        for rec in conns:
            for user, seqs in rec.acks.items():
                acks[user] = acks[user].union(seqs) if user in acks else SeqSet(seqs.ranges())
            sample = sample.merge(rec.acked_ids_sample)
        return History(
            started_at=self.started_at,
            ended_at=self.ended_at,
            complete=self.complete and self.ended_at is not None,
            connections=[c for rec in conns for c in rec.snapshots()],
            acks=acks,
            acked_ids_sample=sample,
            server_stats_before=self.server_stats_before,
            server_stats_after=self.server_stats_after,
        )
