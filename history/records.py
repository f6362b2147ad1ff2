"""The history records (format version 2): what a run saw, and its JSON form.

A run produces a `History` (client/recorder.py writes it); the checkers (checks/) are pure
functions over it; Locust workers send it to the master as `to_dict()`, which merges the
parts (`History.merge`). Memory is bounded by the caps below and those of history.ranges
and history.folded, never by the number of messages.

What is recorded
----------------
Per connection (`ConnectionHistory`): identity (`label`: the client's id, unique in the
run and the stamps' sender; `user`: the identity it acts as; `process`; `conn_id`: the
server's), life (`opened_at`, `closed_at`, `close_code`, `close_reason`,
`close_initiator` "client" | "server" | "abrupt", `open_at_end`), the channels it receives
without subscribing (`channels`), the announced heartbeat (`heartbeat_interval`,
`heartbeat_timeout`: None when the protocol announces none; `heartbeat_kind`: None or "steady"
when the server pings at that interval, "max_silence" when it is the longest the server may
stay silent and every inbound message counts as a ping), resume facts
(`requested_last_seq`: the offset asked for; `welcome_last_seq`: the server's offset;
`replay`; `resumed`; `gap` [from, to|None]; `expect_from`: first seq owed), keep-alives
(`pings`, `first_ping_at`, `last_ping_at`, `ping_interval_min/max/sum`), the state document
(`state_runs`, `state_digest`), bounded counts (`frames_in`, `frames_out`, `errors`: at most
KEY_CAP keys, the rest under "_other"; None until the first count, as an idle connection of
thousands has none, and `{}` in to_dict()), and per channel a `ChannelRecord`:

- `subscribed_at` (None: it got messages on the channel without being subscribed),
  `deliveries`, `unstamped` (deliveries without a stamp);
- `senders`: per stamp sender, the `Arrivals` of its counters (FIFO, duplicates, holes);
- `seqs`: the `Arrivals` of the server's seqs (SERVER_SEQ adapters), and `seq_ids`, a
  thinned seq -> message id map (tab divergence, see SEQ_ID_CAP);
- `log` (history.messages.MessageLog): the unstamped deliveries' keys (the adapter's
  message id, else a hash of the body) in arrival order with their receive times, made on
  the first one, at most LOG_CAP per channel and LOG_BUDGET per connection (subscriber
  agreement, checks.agreement). On the wire only when there is one (older histories have none).

`Arrivals` (history.ranges) keeps arrival order compactly as runs `[lo, hi, t_first]`, by
one rule (`Arrivals.add`): an arrival one above the last one extends the last run, anything
else starts a new run, at most RUN_CAP per stream and RUN_BUDGET per connection.

Per (sender, channel), process-wide (`History.published`): a `PublishRecord` with the
counters published, acknowledged (PUBLISH_ACK) and refused, and the first/last publish
time. Per channel (`History.acked_seqs`): the server seqs of acknowledged publishes
(SERVER_SEQ), with the highest one kept exactly even when the ranges are capped.

`History.folded` (history.folded.Folded): closed connections beyond the recorder's keep
cap, folded into a bounded summary that keeps their evidence (by the fold function the run
hands the recorder, checks.fold.fold).

History-level: `disruptions` (the run's --disrupt actions, when and how each went; older
histories have none), `adapter` (its name), `capabilities` (client.adapter's names; None when
not recorded), `server_stats_before/after` (the reference server's GET /stats), and a
generic count of the server's open connections: `server_connections_before/after` with
`server_connections_source` (e.g. "http://h:p/metrics#socketio_connected").

Conventions the load side follows (the checks rely on them)
------------------------------------------------------------
- Stamps (client.adapter.Stamp): sender = the publishing connection's label, counters
  from 1 per (sender, channel) with no gaps, `sent_at` = time.time() at publish.
- Times are time.time() seconds; across machines they only order connections of one user.
- `Recorder.finish()` only after the traffic drained: an ack whose message is still on
  the wire looks like a loss.

`HISTORY_VERSION` is bumped on any incompatible change; `History.from_dict` and
`History.merge` refuse other versions.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from history.folded import Folded
from history.messages import MessageLog
from history.ranges import RANGE_CAP, Arrivals, SeqSet, capped_from_dict, capped_to_dict

HISTORY_VERSION = 2
STEADY = "steady"
"""`heartbeat_kind`: the server pings at the announced interval (recorded as None)."""
MAX_SILENCE = "max_silence"
"""`heartbeat_kind`: the announced interval is the longest the server may stay silent, and every
inbound message is a sign of life (STOMP heart-beats: the checks judge gaps only)."""
KEY_CAP = 32
"""Distinct keys in frames_in/frames_out/errors; later keys are counted under OTHER."""
OTHER = "_other"
SEQ_ID_STRIDE = 1
"""Initial stride of `ChannelRecord.seq_ids`: seqs with seq % stride == 0 are kept."""
SEQ_ID_CAP = 128
"""When seq_ids outgrows this, the stride doubles and entries off the new stride go.
Strides are powers of two, so two tabs of a user always share the seqs that are
multiples of the larger stride: the comparison stays deterministic."""


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(slots=True)
class ChannelRecord:
    """What one connection received on one channel (see the module docstring)."""

    subscribed_at: float | None = None
    deliveries: int = 0
    unstamped: int = 0
    senders: dict[str, Arrivals] = field(default_factory=dict)
    seqs: Arrivals | None = None
    seq_ids: dict[int, Any] = field(default_factory=dict)
    seq_id_stride: int = SEQ_ID_STRIDE
    log: MessageLog | None = None

    def to_dict(self) -> dict:
        d = {"subscribed_at": self.subscribed_at, "deliveries": self.deliveries,
             "unstamped": self.unstamped,
             "senders": {s: a.to_dict() for s, a in self.senders.items()},
             "seqs": self.seqs.to_dict() if self.seqs is not None else None,
             "seq_ids": {str(k): v for k, v in self.seq_ids.items()},
             "seq_id_stride": self.seq_id_stride}
        if self.log is not None:
            d["log"] = self.log.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ChannelRecord:
        return cls(subscribed_at=_opt_float(d.get("subscribed_at")),
                   deliveries=int(d.get("deliveries", 0)), unstamped=int(d.get("unstamped", 0)),
                   senders={s: Arrivals.from_dict(a) for s, a in (d.get("senders") or {}).items()},
                   seqs=Arrivals.from_dict(d["seqs"]) if d.get("seqs") else None,
                   seq_ids={int(k): v for k, v in (d.get("seq_ids") or {}).items()},
                   seq_id_stride=int(d.get("seq_id_stride", SEQ_ID_STRIDE)),
                   log=MessageLog.from_dict(d["log"]) if d.get("log") else None)

    def copy(self) -> ChannelRecord:
        return ChannelRecord(self.subscribed_at, self.deliveries, self.unstamped,
                             {s: a.copy() for s, a in list(self.senders.items())},
                             self.seqs.copy() if self.seqs is not None else None,
                             dict(self.seq_ids), self.seq_id_stride,
                             self.log.copy() if self.log is not None else None)


_COUNTS = ("errors", "frames_in", "frames_out")
"""ConnectionHistory's bounded counts (made on the first count)."""


@dataclass(slots=True)
class ConnectionHistory:
    """What one WebSocket connection saw, from start-up to close (or end of run).

    Fields: see the module docstring. `state_runs` holds the state document's version
    changes as `[kind, lo, hi, t, match]` (kind "snapshot" | "patch" | "ack"; a patch or
    ack one above the last version extends the run; `match` on a snapshot at the version
    already held: whether its state equals the local copy, else None); `state_overflow`
    counts changes beyond RUN_CAP runs; `unmatched_acks` state acks of no update we sent;
    `untracked` deliveries beyond the channel/stream caps (not in any ChannelRecord).
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
    channels: list[str] = field(default_factory=list)
    heartbeat_interval: float | None = None
    heartbeat_timeout: float | None = None
    heartbeat_kind: str | None = None
    requested_last_seq: int | None = None
    welcome_last_seq: int | None = None
    replay: int = 0
    resumed: bool | None = None
    gap: list | None = None
    expect_from: int | None = None
    received: dict[str, ChannelRecord] = field(default_factory=dict)
    deliveries: int = 0
    untracked: int = 0
    pings: int = 0
    first_ping_at: float | None = None
    last_ping_at: float | None = None
    ping_interval_min: float | None = None
    ping_interval_max: float | None = None
    ping_interval_sum: float = 0.0
    state_runs: list[list] = field(default_factory=list)
    state_overflow: int = 0
    state_digest: str | None = None
    unmatched_acks: int = 0
    errors: dict[str, int] | None = None
    frames_in: dict[str, int] | None = None
    frames_out: dict[str, int] | None = None

    @property
    def ping_interval_mean(self) -> float | None:
        return self.ping_interval_sum / (self.pings - 1) if self.pings > 1 else None

    @property
    def version(self) -> Any:
        """The last state version this connection knew (None before any state)."""
        return self.state_runs[-1][2] if self.state_runs else None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if name == "received":
                v = {ch: r.to_dict() for ch, r in v.items()}
            elif name == "state_runs":
                v = [list(r) for r in v]
            elif isinstance(v, (dict, list)):
                v = type(v)(v)
            elif v is None and name in _COUNTS:
                v = {}
            d[name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ConnectionHistory:
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        kw["received"] = {ch: ChannelRecord.from_dict(r) for ch, r in (d.get("received") or {}).items()}
        kw["channels"] = list(d.get("channels") or [])
        kw["state_runs"] = [list(r) for r in d.get("state_runs") or []]
        for name in _COUNTS:
            kw[name] = dict(d[name]) if d.get(name) else None
        kw["gap"] = list(d["gap"]) if d.get("gap") is not None else None
        for name in ("opened_at", "closed_at", "first_ping_at", "last_ping_at",
                     "ping_interval_min", "ping_interval_max", "heartbeat_interval",
                     "heartbeat_timeout"):
            kw[name] = _opt_float(d.get(name))
        return cls(**kw)

    def copy(self) -> ConnectionHistory:
        """A deep copy without a JSON round trip (the recorder snapshots with it)."""
        c = ConnectionHistory(self.label, self.user)
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if name == "received":
                v = {ch: r.copy() for ch, r in list(v.items())}
            elif name == "state_runs":
                v = [list(r) for r in v]
            elif isinstance(v, (dict, list)):
                v = type(v)(v)
            setattr(c, name, v)
        return c


@dataclass(slots=True)
class PublishRecord:
    """What one sender published to one channel: counters published, acknowledged
    (PUBLISH_ACK) and refused (capped SeqSets), and the first/last publish time."""

    counters: SeqSet = field(default_factory=lambda: SeqSet(cap=RANGE_CAP))
    acked: SeqSet = field(default_factory=lambda: SeqSet(cap=RANGE_CAP))
    failed: SeqSet = field(default_factory=lambda: SeqSet(cap=RANGE_CAP))
    first_at: float | None = None
    last_at: float | None = None

    def merge(self, other: PublishRecord) -> PublishRecord:
        firsts = [t for t in (self.first_at, other.first_at) if t is not None]
        lasts = [t for t in (self.last_at, other.last_at) if t is not None]
        return PublishRecord(self.counters.union(other.counters), self.acked.union(other.acked),
                             self.failed.union(other.failed), min(firsts) if firsts else None,
                             max(lasts) if lasts else None)

    def copy(self) -> PublishRecord:
        return PublishRecord(self.counters.copy(), self.acked.copy(), self.failed.copy(),
                             self.first_at, self.last_at)

    def to_dict(self) -> dict:
        return {"counters": capped_to_dict(self.counters), "acked": capped_to_dict(self.acked),
                "failed": capped_to_dict(self.failed), "first_at": self.first_at,
                "last_at": self.last_at}

    @classmethod
    def from_dict(cls, d: dict) -> PublishRecord:
        return cls(capped_from_dict(d.get("counters")), capped_from_dict(d.get("acked")),
                   capped_from_dict(d.get("failed")), _opt_float(d.get("first_at")),
                   _opt_float(d.get("last_at")))


@dataclass(slots=True)
class AckedSeqs:
    """Server seqs of acknowledged publishes on one channel (SERVER_SEQ): a capped set
    (publishes of many senders interleave), their exact count and the highest one."""

    seqs: SeqSet = field(default_factory=lambda: SeqSet(cap=RANGE_CAP))
    top: int | None = None
    count: int = 0

    def add(self, seq: int) -> None:
        self.seqs.add(seq)
        self.count += 1
        if self.top is None or seq > self.top:
            self.top = seq

    def merge(self, other: AckedSeqs) -> AckedSeqs:
        tops = [t for t in (self.top, other.top) if t is not None]
        return AckedSeqs(self.seqs.union(other.seqs), max(tops) if tops else None,
                         self.count + other.count)

    def copy(self) -> AckedSeqs:
        return AckedSeqs(self.seqs.copy(), self.top, self.count)

    def to_dict(self) -> dict:
        return {**capped_to_dict(self.seqs), "top": self.top, "count": self.count}

    @classmethod
    def from_dict(cls, d: dict) -> AckedSeqs:
        top = d.get("top")
        return cls(capped_from_dict(d), None if top is None else int(top), int(d.get("count", 0)))


def state_digest(state: dict) -> str:
    """A short, order-independent digest of a state document."""
    blob = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _first(a: Any, b: Any) -> Any:
    return a if a is not None else b


@dataclass(slots=True)
class History:
    """A whole run (or one worker's part of it).

    `complete` is False while the run is going, when it was cut short, or when a worker's
    part is missing: checks then answer UNKNOWN rather than PASS. `published_overflow`
    counts publishes not recorded because the recorder's table of senders was full.
    """

    version: int = HISTORY_VERSION
    started_at: float | None = None
    ended_at: float | None = None
    complete: bool = False
    adapter: str | None = None
    capabilities: frozenset[str] | None = None
    connections: list[ConnectionHistory] = field(default_factory=list)
    published: dict[str, dict[str, PublishRecord]] = field(default_factory=dict)
    published_overflow: int = 0
    acked_seqs: dict[str, AckedSeqs] = field(default_factory=dict)
    folded: Folded = field(default_factory=Folded)
    server_stats_before: dict | None = None
    server_stats_after: dict | None = None
    server_connections_before: int | None = None
    server_connections_after: int | None = None
    server_connections_source: str | None = None
    disruptions: list[dict] = field(default_factory=list)
    """The run's --disrupt actions (set by the master or local runner, which ran them): per one
    `spec`, `at` (seconds from the run's start), `action`, `started_at`/`ended_at` (time.time()),
    `result` ("done" | "failed" | "cancelled"), `exit_code` (a `run` command's), `detail`."""

    def has(self, capability: str) -> bool:
        return self.capabilities is not None and capability in self.capabilities

    @property
    def adapter_name(self) -> str:
        return self.adapter or "unnamed"

    def merge(self, other: History) -> History:
        """Union of two histories (how the Locust master merges worker summaries)."""
        for v in (self.version, other.version):
            if v != HISTORY_VERSION:
                raise ValueError(f"cannot merge history version {v} (expected {HISTORY_VERSION})")
        if self.capabilities is None or other.capabilities is None:
            caps = _first(self.capabilities, other.capabilities)
        else:
            caps = self.capabilities & other.capabilities  # only what every part had
        published = {s: {ch: r.copy() for ch, r in chs.items()} for s, chs in self.published.items()}
        for sender, chs in other.published.items():
            mine = published.setdefault(sender, {})
            for ch, r in chs.items():
                mine[ch] = mine[ch].merge(r) if ch in mine else r.copy()
        acked = {ch: a.copy() for ch, a in self.acked_seqs.items()}
        for ch, a in other.acked_seqs.items():
            acked[ch] = acked[ch].merge(a) if ch in acked else a.copy()
        starts = [t for t in (self.started_at, other.started_at) if t is not None]
        ends = [t for t in (self.ended_at, other.ended_at) if t is not None]
        return History(
            started_at=min(starts) if starts else None,
            ended_at=max(ends) if ends else None,
            complete=self.complete and other.complete,
            adapter=_first(self.adapter, other.adapter),
            capabilities=caps,
            connections=[c.copy() for c in self.connections + other.connections],
            published=published,
            published_overflow=self.published_overflow + other.published_overflow,
            acked_seqs=acked,
            folded=self.folded.merge(other.folded),
            server_stats_before=_first(self.server_stats_before, other.server_stats_before),
            server_stats_after=_first(self.server_stats_after, other.server_stats_after),
            server_connections_before=_first(self.server_connections_before,
                                             other.server_connections_before),
            server_connections_after=_first(self.server_connections_after,
                                            other.server_connections_after),
            server_connections_source=_first(self.server_connections_source,
                                             other.server_connections_source),
            disruptions=[dict(d) for d in (self.disruptions or other.disruptions)],
        )

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "complete": self.complete,
            "adapter": self.adapter,
            "capabilities": None if self.capabilities is None else sorted(self.capabilities),
            "connections": [c.to_dict() for c in self.connections],
            "published": {s: {ch: r.to_dict() for ch, r in chs.items()}
                          for s, chs in self.published.items()},
            "published_overflow": self.published_overflow,
            "acked_seqs": {ch: a.to_dict() for ch, a in self.acked_seqs.items()},
            "folded": self.folded.to_dict(),
            "server_stats_before": self.server_stats_before,
            "server_stats_after": self.server_stats_after,
            "server_connections_before": self.server_connections_before,
            "server_connections_after": self.server_connections_after,
            "server_connections_source": self.server_connections_source,
            **({"disruptions": [dict(d) for d in self.disruptions]} if self.disruptions else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        version = d.get("version")
        if version != HISTORY_VERSION:
            raise ValueError(f"history version {version!r} not supported (expected {HISTORY_VERSION})")
        caps = d.get("capabilities")
        return cls(
            version=version,
            started_at=_opt_float(d.get("started_at")),
            ended_at=_opt_float(d.get("ended_at")),
            complete=bool(d.get("complete", False)),
            adapter=d.get("adapter"),
            capabilities=None if caps is None else frozenset(caps),
            connections=[ConnectionHistory.from_dict(c) for c in d.get("connections", [])],
            published={s: {ch: PublishRecord.from_dict(r) for ch, r in chs.items()}
                       for s, chs in (d.get("published") or {}).items()},
            published_overflow=int(d.get("published_overflow", 0)),
            acked_seqs={ch: AckedSeqs.from_dict(a) for ch, a in (d.get("acked_seqs") or {}).items()},
            folded=Folded.from_dict(d.get("folded")),
            server_stats_before=d.get("server_stats_before"),
            server_stats_after=d.get("server_stats_after"),
            server_connections_before=d.get("server_connections_before"),
            server_connections_after=d.get("server_connections_after"),
            server_connections_source=d.get("server_connections_source"),
            disruptions=[dict(x) for x in d.get("disruptions") or [] if isinstance(x, dict)],
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))
