"""The history format: the one contract between the load side and the checks.

A run produces a `History`; checkers (`checks/*.py`) are pure functions over it.
It is compact on purpose: memory is O(connections), never O(messages). Received
seqs are kept as ranges (`SeqSet`), anomaly evidence as capped samples with a
separate total (`Samples`), and per-seq message ids only for a thinned, deterministic
subset of seqs (`seq_ids`).

Conventions the load side must follow (the checks rely on them):

- Message ids of `send`s are ``"<sender-label>:<counter>"``: the label of the sending
  connection (unique in the whole run, so include the process id, e.g.
  ``"w1-alice-3"``) and an int counter that only grows for that label. A recipient
  connection must see the counters of one sender label increase (FIFO per sender).
  Ids of any other form are recorded but not FIFO-checked.
- Times are `time.time()` seconds. Times from different processes are compared only
  to order connections of one user (clock skew between machines matters there).
- Call `Recorder.finish()` only after the traffic drained (senders stopped, a short
  wait): an ack whose message is still on the wire looks like a loss.

Format version: `HISTORY_VERSION`. Bump it on any incompatible change;
`History.from_dict` refuses other versions.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

HISTORY_VERSION = 1
SAMPLE_CAP = 20
"""Evidence samples kept per anomaly list (the total is counted separately)."""
SEQ_ID_STRIDE = 1
"""Initial stride of `ConnectionHistory.seq_ids`: seqs with seq % stride == 0 are kept."""
SEQ_ID_CAP = 256
"""When seq_ids outgrows this, the stride doubles and entries off the new stride go.
Strides are powers of two, so two tabs of a user always share the seqs that are
multiples of the larger stride: the comparison stays deterministic."""


class SeqSet:
    """A set of ints kept as sorted, disjoint, non-adjacent inclusive ranges.

    `add` is O(1) for in-order (or append-after-gap) adds, O(log n) otherwise.
    """

    __slots__ = ("_lo", "_hi")

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        pairs = sorted((int(lo), int(hi)) for lo, hi in ranges)
        for lo, hi in pairs:
            if lo > hi:
                raise ValueError(f"bad range [{lo}, {hi}]: lo > hi")
            if self._hi and lo <= self._hi[-1] + 1:
                self._hi[-1] = max(self._hi[-1], hi)
            else:
                self._lo.append(lo)
                self._hi.append(hi)

    def add(self, seq: int) -> bool:
        """Add seq; False when it was already present (a duplicate)."""
        lo, hi = self._lo, self._hi
        if not hi or seq > hi[-1] + 1:
            lo.append(seq)
            hi.append(seq)
            return True
        if seq == hi[-1] + 1:
            hi[-1] = seq
            return True
        i = bisect_right(lo, seq) - 1
        if i >= 0 and seq <= hi[i]:
            return False
        join_left = i >= 0 and hi[i] == seq - 1
        join_right = i + 1 < len(lo) and lo[i + 1] == seq + 1
        if join_left and join_right:
            hi[i] = hi[i + 1]
            del lo[i + 1], hi[i + 1]
        elif join_left:
            hi[i] = seq
        elif join_right:
            lo[i + 1] = seq
        else:
            lo.insert(i + 1, seq)
            hi.insert(i + 1, seq)
        return True

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect_right(self._lo, seq) - 1
        return i >= 0 and seq <= self._hi[i]

    def missing(self, lo: int, hi: int) -> list[list[int]]:
        """The ranges of [lo, hi] (inclusive) that are not in the set."""
        out: list[list[int]] = []
        if lo > hi:
            return out
        cur = lo
        i = max(bisect_right(self._lo, lo) - 1, 0)
        for a, b in zip(self._lo[i:], self._hi[i:], strict=True):
            if a > hi:
                break
            if b < cur:
                continue
            if a > cur:
                out.append([cur, a - 1])
            cur = b + 1
            if cur > hi:
                return out
        if cur <= hi:
            out.append([cur, hi])
        return out

    def union(self, other: SeqSet) -> SeqSet:
        return SeqSet(self.ranges() + other.ranges())

    def count(self) -> int:
        return sum(b - a + 1 for a, b in zip(self._lo, self._hi, strict=True))

    __len__ = count

    def __bool__(self) -> bool:
        return bool(self._lo)

    @property
    def first(self) -> int | None:
        return self._lo[0] if self._lo else None

    @property
    def last(self) -> int | None:
        return self._hi[-1] if self._hi else None

    def ranges(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self._lo, self._hi, strict=True)]

    to_list = ranges

    @classmethod
    def from_list(cls, ranges: Iterable[Iterable[int]]) -> SeqSet:
        return cls(ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeqSet) and self._lo == other._lo and self._hi == other._hi

    def __repr__(self) -> str:
        return f"SeqSet({self.ranges()})"


@dataclass(slots=True)
class Samples:
    """An anomaly list: the first `cap` items as evidence plus the true total."""

    total: int = 0
    items: list[dict] = field(default_factory=list)
    cap: int = SAMPLE_CAP

    def add(self, item: dict) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(item)

    def merge(self, other: Samples) -> Samples:
        cap = max(self.cap, other.cap)
        return Samples(self.total + other.total, (self.items + other.items)[:cap], cap)

    def __bool__(self) -> bool:
        return self.total > 0

    def to_dict(self) -> dict:
        return {"total": self.total, "items": list(self.items)}

    @classmethod
    def from_dict(cls, d: dict | None) -> Samples:
        d = d or {}
        return cls(int(d.get("total", 0)), list(d.get("items", [])))


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(slots=True)
class ConnectionHistory:
    """What one WebSocket connection saw, from handshake to close (or end of run).

    Identity: `label` (client-side id, unique in the run), `conn_id` (the server's, from
    welcome), `user`, `process` (Locust worker / process id).
    Life: `opened_at`/`closed_at` (time.time()), `close_code`, `close_reason`,
    `close_initiator` ("client" | "server" | "abrupt" | None while open),
    `open_at_end` (the run finished with it open).
    Resume (from welcome): `requested_last_seq` (the `?last_seq` we sent, or None),
    `welcome_last_seq`, `replay`, `resumed`, `gap` ([from, to] with to possibly None,
    or None), `expect_from` (first seq this connection must see).
    Messages: `received` (seqs of `message` frames), `last_seq` (highest seq),
    `messages` (message frames, duplicates included), `duplicates` (same seq again:
    {seq, id, t}), `duplicate_ids` (same sender counter again under a new seq:
    {seq, id, t}), `out_of_order` (seq below the highest seen: {seq, prev, t}),
    `malformed` (message frames without an int seq: {msg, t}), `fifo` (sender label ->
    last counter), `fifo_violations` ({sender, counter, prev, seq, t}), `seq_ids`
    (seq -> message id for seq % seq_id_stride == 0, see SEQ_ID_CAP).
    State: `version` (last known version of the user's state document, None before the
    snapshot), `version_anomalies` ({kind, version, expected|prev, t}; kinds
    "patch_version", "patch_before_snapshot", "snapshot_backwards", "snapshot_mismatch",
    "ack_version"), `state_digest` (digest of the local copy of the state at the end,
    see `state_digest()`).
    Heartbeat: `heartbeat_interval`/`heartbeat_timeout` (advertised, seconds), `pings`
    (server ping frames), `first_ping_at`, `last_ping_at`, `ping_interval_min/max/sum`
    (between consecutive pings; mean = sum / (pings - 1)).
    Other: `errors` (error frames by code), `frames_in`/`frames_out` (by type),
    `unmatched_acks` (acks whose id was not a tracked in-flight request).
    """

    label: str
    user: str
    process: str = "local"
    conn_id: Any = None
    opened_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    close_initiator: str | None = None
    open_at_end: bool = False
    requested_last_seq: int | None = None
    welcome_last_seq: int | None = None
    replay: int = 0
    resumed: bool | None = None
    gap: list | None = None
    expect_from: int | None = None
    received: SeqSet = field(default_factory=SeqSet)
    last_seq: int | None = None
    messages: int = 0
    duplicates: Samples = field(default_factory=Samples)
    duplicate_ids: Samples = field(default_factory=Samples)
    out_of_order: Samples = field(default_factory=Samples)
    malformed: Samples = field(default_factory=Samples)
    fifo: dict[str, int] = field(default_factory=dict)
    fifo_violations: Samples = field(default_factory=Samples)
    seq_ids: dict[int, Any] = field(default_factory=dict)
    seq_id_stride: int = SEQ_ID_STRIDE
    version: int | None = None
    version_anomalies: Samples = field(default_factory=Samples)
    state_digest: str | None = None
    heartbeat_interval: float | None = None
    heartbeat_timeout: float | None = None
    pings: int = 0
    first_ping_at: float | None = None
    last_ping_at: float | None = None
    ping_interval_min: float | None = None
    ping_interval_max: float | None = None
    ping_interval_sum: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    frames_in: dict[str, int] = field(default_factory=dict)
    frames_out: dict[str, int] = field(default_factory=dict)
    unmatched_acks: int = 0

    @property
    def ping_interval_mean(self) -> float | None:
        return self.ping_interval_sum / (self.pings - 1) if self.pings > 1 else None

    def to_dict(self) -> dict:
        d = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, SeqSet):
                v = v.to_list()
            elif isinstance(v, Samples):
                v = v.to_dict()
            elif isinstance(v, dict):
                v = dict(v) if name != "seq_ids" else {str(k): x for k, x in v.items()}
            elif isinstance(v, list):
                v = list(v)
            d[name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ConnectionHistory:
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["received"] = SeqSet.from_list(d.get("received", []))
        for name in ("duplicates", "duplicate_ids", "out_of_order", "malformed",
                     "fifo_violations", "version_anomalies"):
            kw[name] = Samples.from_dict(d.get(name))
        kw["seq_ids"] = {int(k): v for k, v in (d.get("seq_ids") or {}).items()}
        for name in ("fifo", "errors", "frames_in", "frames_out"):
            kw[name] = dict(d.get(name) or {})
        kw["gap"] = list(d["gap"]) if d.get("gap") is not None else None
        for name in ("opened_at", "closed_at", "first_ping_at", "last_ping_at",
                     "ping_interval_min", "ping_interval_max"):
            kw[name] = _opt_float(d.get(name))
        return cls(**kw)

    def copy(self) -> ConnectionHistory:
        return ConnectionHistory.from_dict(self.to_dict())


def state_digest(state: dict) -> str:
    """A short, order-independent digest of a state document."""
    import hashlib

    blob = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(slots=True)
class History:
    """A whole run (or one worker's part of it).

    `complete` is False while the run is going, when it was cut short, or when a user
    crashed: checks then answer "unknown" rather than pass. `acks` maps a recipient
    user to the seqs the server acked for `send`s to it (from the processes merged in);
    `acked_ids_sample` holds {user, seq, id, t} samples of those acks.
    `server_stats_before`/`_after` are GET /stats bodies taken around the run.
    """

    version: int = HISTORY_VERSION
    started_at: float | None = None
    ended_at: float | None = None
    complete: bool = False
    connections: list[ConnectionHistory] = field(default_factory=list)
    acks: dict[str, SeqSet] = field(default_factory=dict)
    acked_ids_sample: Samples = field(default_factory=Samples)
    server_stats_before: dict | None = None
    server_stats_after: dict | None = None

    def merge(self, other: History) -> History:
        """Union of two histories (how the Locust master merges worker summaries)."""
        if other.version != self.version:
            raise ValueError(f"cannot merge history versions {self.version} and {other.version}")
        acks = {u: SeqSet(s.ranges()) for u, s in self.acks.items()}
        for user, seqs in other.acks.items():
            acks[user] = acks[user].union(seqs) if user in acks else SeqSet(seqs.ranges())
        starts = [t for t in (self.started_at, other.started_at) if t is not None]
        ends = [t for t in (self.ended_at, other.ended_at) if t is not None]
        return History(
            version=self.version,
            started_at=min(starts) if starts else None,
            ended_at=max(ends) if ends else None,
            complete=self.complete and other.complete,
            connections=[c.copy() for c in self.connections + other.connections],
            acks=acks,
            acked_ids_sample=self.acked_ids_sample.merge(other.acked_ids_sample),
            server_stats_before=self.server_stats_before if self.server_stats_before is not None
            else other.server_stats_before,
            server_stats_after=self.server_stats_after if self.server_stats_after is not None
            else other.server_stats_after,
        )

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "complete": self.complete,
            "connections": [c.to_dict() for c in self.connections],
            "acks": {u: s.to_list() for u, s in self.acks.items()},
            "acked_ids_sample": self.acked_ids_sample.to_dict(),
            "server_stats_before": self.server_stats_before,
            "server_stats_after": self.server_stats_after,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        version = d.get("version")
        if version != HISTORY_VERSION:
            raise ValueError(f"history version {version!r} not supported (expected {HISTORY_VERSION})")
        return cls(
            version=version,
            started_at=_opt_float(d.get("started_at")),
            ended_at=_opt_float(d.get("ended_at")),
            complete=bool(d.get("complete", False)),
            connections=[ConnectionHistory.from_dict(c) for c in d.get("connections", [])],
            acks={u: SeqSet.from_list(r) for u, r in (d.get("acks") or {}).items()},
            acked_ids_sample=Samples.from_dict(d.get("acked_ids_sample")),
            server_stats_before=d.get("server_stats_before"),
            server_stats_after=d.get("server_stats_after"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))
