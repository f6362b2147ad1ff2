"""Folded connections: closed connections squeezed into one bounded summary.

The recorder keeps the latest closed connections whole and hands older ones to a fold
function (the run gives it checks.fold.fold), which writes what they prove into a `Folded`
through the `add_*` methods below. This module knows nothing of the checks: it holds the
summary, its caps and its merge, which is structural (workers' summaries merge on the
master without folding anything again).

All of it is bounded: FOLD_KEYS (sender, channel) hole sets of at most RANGE_CAP ranges,
FOLD_KEYS channels, FOLD_PROCESSES processes, SAMPLE_CAP samples per finding kind,
FOLD_HEARTBEAT heartbeat facts, FOLD_MEANS ping means; what does not fit is counted in
`Folded.overflow` (the dropped regular heartbeat facts excepted: dropping those is the design).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from history.ranges import Samples, SeqSet, capped_from_dict, capped_to_dict

FOLD_KEYS = 4096
"""(sender, channel) hole sets, and channels, kept in a summary."""
FOLD_HEARTBEAT = 20
"""Heartbeat facts kept: those of the most irregular connections (highest "score")."""
FOLD_MEANS = 256
"""Mean ping intervals kept (for the observed interval)."""
FOLD_PROCESSES = 256
"""Processes counted separately in `by_process`."""


@dataclass(slots=True)
class Folded:
    """Closed connections folded out of `History.connections`.

    `connections`/`by_process`/`deliveries`: how many and how much. `findings`: per
    anomaly kind, the evidence of anomalies a connection proves on its own (order,
    duplicates, seq holes, state versions). `holes`: per sender and channel, the stamp
    counters some folded receiver missed between two it got (judged by the loss check
    against what was owed); `hole_receivers` names them. `channel_seqs`: per channel the
    highest seq and the open/close span of the folded connections (server-restart eras).
    `heartbeat`: the facts of the most irregular folded connections (checks.heartbeat),
    `ping_means`: a sample of their mean ping intervals. `overflow`: entries not kept.
    """

    connections: int = 0
    by_process: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0
    findings: dict[str, Samples] = field(default_factory=dict)
    holes: dict[str, dict[str, SeqSet]] = field(default_factory=dict)
    hole_receivers: Samples = field(default_factory=Samples)
    channel_seqs: dict[str, dict] = field(default_factory=dict)
    heartbeat: list[dict] = field(default_factory=list)
    ping_means: list[float] = field(default_factory=list)
    overflow: int = 0

    # -- what a fold function writes ------------------------------------------
    def add_connection(self, process: str, deliveries: int, count: int = 1) -> None:
        """Count folded connections of one process and their deliveries."""
        self.connections += count
        if process in self.by_process or len(self.by_process) < FOLD_PROCESSES:
            self.by_process[process] = self.by_process.get(process, 0) + count
        self.deliveries += deliveries

    def add_finding(self, kind: str, sample: dict) -> None:
        """One anomaly a folded connection proves on its own, as an evidence sample."""
        found = self.findings.get(kind)
        if found is None:
            found = self.findings[kind] = Samples()
        found.add(sample)

    def add_holes(self, sender: str, channel: str, holes: SeqSet) -> None:
        """Stamp counters of `sender` on `channel` a folded receiver missed (unioned per pair)."""
        mine = self.holes.get(sender, {}).get(channel)
        if mine is None:
            if sum(len(chs) for chs in self.holes.values()) >= FOLD_KEYS:
                self.overflow += 1
                return
            self.holes.setdefault(sender, {})[channel] = holes
        else:
            self.holes[sender][channel] = mine.union(holes)

    def add_channel_seqs(self, channel: str, entry: dict) -> None:
        """A channel's highest seq ("top") and open/close span ("opened_at", "closed_at")."""
        mine = self.channel_seqs.get(channel)
        if mine is None:
            if len(self.channel_seqs) >= FOLD_KEYS:
                self.overflow += 1
                return
            self.channel_seqs[channel] = dict(entry)
            return
        for key, pick in (("top", max), ("opened_at", min), ("closed_at", max)):
            values = [v for v in (mine.get(key), entry.get(key)) if v is not None]
            mine[key] = pick(values) if values else None

    def add_heartbeat(self, facts: list[dict]) -> None:
        """Keep the FOLD_HEARTBEAT facts with the highest "score" (the most irregular)."""
        kept = sorted(self.heartbeat + facts, key=lambda f: -f.get("score", 0.0))
        self.heartbeat = kept[:FOLD_HEARTBEAT]

    def add_ping_means(self, means: list[float]) -> None:
        """Mean ping intervals, up to FOLD_MEANS."""
        self.ping_means = (self.ping_means + means)[:FOLD_MEANS]

    # -- whole summaries -------------------------------------------------------
    def merge(self, other: Folded) -> Folded:
        """Union of two summaries (workers -> master); the caps apply again."""
        out = self.copy()
        theirs = other.copy()
        out.connections += theirs.connections
        for process, n in theirs.by_process.items():
            if process in out.by_process or len(out.by_process) < FOLD_PROCESSES:
                out.by_process[process] = out.by_process.get(process, 0) + n
        out.deliveries += theirs.deliveries
        for kind, samples in theirs.findings.items():
            out.findings[kind] = out.findings[kind].merge(samples) if kind in out.findings else samples
        for sender, channels in theirs.holes.items():
            for channel, holes in channels.items():
                out.add_holes(sender, channel, holes)
        out.hole_receivers = out.hole_receivers.merge(theirs.hole_receivers)
        for channel, entry in theirs.channel_seqs.items():
            out.add_channel_seqs(channel, entry)
        out.add_heartbeat(theirs.heartbeat)
        out.add_ping_means(theirs.ping_means)
        out.overflow += theirs.overflow
        return out

    def copy(self) -> Folded:
        return Folded.from_dict(self.to_dict())

    def to_dict(self) -> dict:
        return {"connections": self.connections, "by_process": dict(self.by_process),
                "deliveries": self.deliveries,
                "findings": {k: s.to_dict() for k, s in self.findings.items()},
                "holes": {s: {ch: capped_to_dict(x) for ch, x in chs.items()}
                          for s, chs in self.holes.items()},
                "hole_receivers": self.hole_receivers.to_dict(),
                "channel_seqs": {ch: dict(v) for ch, v in self.channel_seqs.items()},
                "heartbeat": [dict(x) for x in self.heartbeat],
                "ping_means": list(self.ping_means), "overflow": self.overflow}

    @classmethod
    def from_dict(cls, d: dict | None) -> Folded:
        d = d or {}
        return cls(int(d.get("connections", 0)), dict(d.get("by_process") or {}),
                   int(d.get("deliveries", 0)),
                   {k: Samples.from_dict(s) for k, s in (d.get("findings") or {}).items()},
                   {s: {ch: capped_from_dict(x) for ch, x in chs.items()}
                    for s, chs in (d.get("holes") or {}).items()},
                   Samples.from_dict(d.get("hole_receivers")),
                   {ch: dict(v) for ch, v in (d.get("channel_seqs") or {}).items()},
                   [dict(x) for x in d.get("heartbeat") or []],
                   [float(x) for x in d.get("ping_means") or []], int(d.get("overflow", 0)))

