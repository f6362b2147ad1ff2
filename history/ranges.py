"""The bounded value types of the history: ranges of ints, arrival runs, evidence samples.

`SeqSet`: a set of ints as sorted disjoint ranges (counters published, acknowledged,
refused; holes), optionally capped at RANGE_CAP ranges with what it drops counted.
`Arrivals`: the arrival order of one stream as runs, with the one run-extension rule
(`Arrivals.add`) that the recorder and every other writer use. `Samples`: an anomaly list,
the first SAMPLE_CAP items as evidence and the true total. Memory is bounded by these
caps, never by the number of messages.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

SAMPLE_CAP = 20
"""Evidence samples kept per anomaly list (the total is counted separately)."""
RUN_CAP = 1024
"""Arrival runs kept per stream; later arrivals are counted in `Arrivals.overflow`."""
RUN_BUDGET = 4096
"""Arrival runs kept per connection over all its streams (the recorder hands what is left of
it to `Arrivals.add`)."""
RANGE_CAP = 256
"""Ranges kept per capped SeqSet (acks, failures, holes); the rest counted in `overflow`."""


class SeqSet:
    """A set of ints kept as sorted, disjoint, non-adjacent inclusive ranges.

    `add` is O(1) for in-order (or append-after-gap) adds, O(log n) otherwise. With a
    `cap`, an add that would need a range beyond `cap` ranges is dropped and counted in
    `overflow` (the set is then a subset of what was added).
    """

    __slots__ = ("_lo", "_hi", "cap", "overflow")

    def __init__(self, ranges: Iterable[Iterable[int]] = (), cap: int | None = None,
                 overflow: int = 0) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self.cap = cap
        self.overflow = overflow
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
        if hi and seq == hi[-1] + 1:
            hi[-1] = seq
            return True
        if not hi or seq > hi[-1] + 1:
            if self.cap is not None and len(lo) >= self.cap:
                self.overflow += 1
                return True
            lo.append(seq)
            hi.append(seq)
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
        elif self.cap is not None and len(lo) >= self.cap:
            self.overflow += 1
        else:
            lo.insert(i + 1, seq)
            hi.insert(i + 1, seq)
        return True

    def add_range(self, lo: int, hi: int) -> None:
        """Add every int of [lo, hi] (uncapped: for building sets in the checks)."""
        i = bisect_right(self._hi, lo - 2)  # first range that could touch [lo, hi]
        j = i
        while j < len(self._lo) and self._lo[j] <= hi + 1:
            lo, hi = min(lo, self._lo[j]), max(hi, self._hi[j])
            j += 1
        self._lo[i:j] = [lo]
        self._hi[i:j] = [hi]

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

    def intersect(self, ranges: Iterable[Iterable[int]]) -> list[list[int]]:
        """The parts of `ranges` (sorted, disjoint) that are in the set."""
        out: list[list[int]] = []
        for a, b in ranges:
            i = max(bisect_right(self._lo, a) - 1, 0)
            for lo, hi in zip(self._lo[i:], self._hi[i:], strict=True):
                if lo > b:
                    break
                x, y = max(a, lo), min(b, hi)
                if x <= y:
                    out.append([x, y])
        return out

    def union(self, other: SeqSet) -> SeqSet:
        """Both sets (caps: the larger; overflows add up; the cap applies again)."""
        caps = [c for c in (self.cap, other.cap) if c is not None]
        merged = SeqSet(self.ranges() + other.ranges())
        cap = max(caps) if caps else None
        merged.cap, merged.overflow = cap, self.overflow + other.overflow
        if cap is not None and len(merged._lo) > cap:
            dropped = merged._lo[cap:], merged._hi[cap:]
            merged.overflow += sum(b - a + 1 for a, b in zip(*dropped, strict=True))
            del merged._lo[cap:], merged._hi[cap:]
        return merged

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
    def from_list(cls, ranges: Iterable[Iterable[int]], cap: int | None = None,
                  overflow: int = 0) -> SeqSet:
        return cls(ranges, cap, overflow)

    def copy(self) -> SeqSet:
        out = SeqSet(cap=self.cap, overflow=self.overflow)
        out._lo, out._hi = list(self._lo), list(self._hi)
        return out

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SeqSet) and self._lo == other._lo and self._hi == other._hi
                and self.overflow == other.overflow)

    def __repr__(self) -> str:
        extra = f", overflow={self.overflow}" if self.overflow else ""
        return f"SeqSet({self.ranges()}{extra})"


def capped_to_dict(s: SeqSet) -> dict:
    """A capped SeqSet on the wire: {"ranges": [[lo, hi], ...], "overflow": n}."""
    return {"ranges": s.ranges(), "overflow": s.overflow}


def capped_from_dict(d: dict | None) -> SeqSet:
    """The inverse of capped_to_dict, capped at RANGE_CAP again."""
    d = d or {}
    return SeqSet(d.get("ranges") or [], RANGE_CAP, int(d.get("overflow", 0)))


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


class Arrivals:
    """The arrival order of one stream (a sender's counters, or a channel's seqs).

    `runs` is flat, `[lo, hi, t_first, lo, hi, t_first, ...]`, written only by `add`.
    `last_at` is the time of the latest arrival; `overflow` counts arrivals no run holds.
    """

    __slots__ = ("runs", "overflow", "last_at")

    def __init__(self, value: int, t: float) -> None:
        self.runs: list = [value, value, t]
        self.overflow = 0
        self.last_at = t

    def add(self, value: int, t: float, budget: int = RUN_CAP) -> int:
        """Record one arrival; return the runs it started (0 or 1).

        The run-extension rule: an arrival one above the last run's hi extends that run;
        any other starts a run, while the stream holds fewer than RUN_CAP runs and `budget`
        (the runs its owner may still start, e.g. what is left of a connection's RUN_BUDGET)
        is above 0; otherwise it is only counted in `overflow`. A clean stream is one run
        and every anomaly (a hole, a duplicate, a reorder) costs one, so a stream at its cap
        already holds RUN_CAP - 1 anomalies. The owner subtracts the result from its budget.
        """
        runs = self.runs
        self.last_at = t
        if value == runs[-2] + 1:
            runs[-2] = value
            return 0
        if budget > 0 and len(runs) < 3 * RUN_CAP:
            runs += (value, value, t)
            return 1
        self.overflow += 1
        return 0

    def run_list(self) -> list[tuple[int, int, float]]:
        r = self.runs
        return [(r[i], r[i + 1], r[i + 2]) for i in range(0, len(r), 3)]

    def received(self) -> SeqSet:
        """Every value that arrived at least once (overflowed arrivals excepted)."""
        return SeqSet((lo, hi) for lo, hi, _ in self.run_list())

    @property
    def truncated(self) -> bool:
        return self.overflow > 0

    def to_dict(self) -> dict:
        return {"runs": [list(r) for r in self.run_list()], "overflow": self.overflow,
                "last_at": self.last_at}

    @classmethod
    def from_dict(cls, d: dict) -> Arrivals:
        runs = [x for r in d.get("runs") or [] for x in (int(r[0]), int(r[1]), float(r[2]))]
        if not runs:
            raise ValueError("an Arrivals record needs at least one run")
        a = cls(runs[0], runs[2])
        a.runs = runs
        a.overflow = int(d.get("overflow", 0))
        a.last_at = float(d.get("last_at", runs[-1]))
        return a

    def copy(self) -> Arrivals:
        a = Arrivals.__new__(Arrivals)
        a.runs, a.overflow, a.last_at = list(self.runs), self.overflow, self.last_at
        return a

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Arrivals) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Arrivals({self.run_list()}, overflow={self.overflow})"

