"""Reading arrival runs back: what a stream received, what came twice, what came late.

One pass over `Arrivals.runs` in arrival order (O(runs log runs)), shared by the
ordering, duplicates, loss and fold code so they agree on what a stream shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from history import SAMPLE_CAP, Arrivals, SeqSet


@dataclass(slots=True)
class StreamFacts:
    """`received`: every value that arrived; `duplicates`/`late`: how many arrivals came a
    second time / below the highest value already seen (not duplicates), with samples
    {value, prev (the highest seen before), t (first arrival of its run)}."""

    received: SeqSet
    duplicates: int = 0
    late: int = 0
    duplicate_samples: list[dict] = field(default_factory=list)
    late_samples: list[dict] = field(default_factory=list)
    truncated: int = 0


def analyse(arrivals: Arrivals) -> StreamFacts:
    seen = SeqSet()
    facts = StreamFacts(seen, truncated=arrivals.overflow)
    high: int | None = None
    for lo, hi, t in arrivals.run_list():
        overlap = seen.intersect([[lo, hi]])
        if overlap:
            n = sum(b - a + 1 for a, b in overlap)
            facts.duplicates += n
            if len(facts.duplicate_samples) < SAMPLE_CAP:
                facts.duplicate_samples.append({"value": overlap[0][0], "count": n, "prev": high, "t": t})
        if high is not None and lo < high:
            new_below = seen.missing(lo, min(hi, high))
            n = sum(b - a + 1 for a, b in new_below)
            if n:
                facts.late += n
                if len(facts.late_samples) < SAMPLE_CAP:
                    facts.late_samples.append({"value": new_below[0][0], "count": n, "prev": high, "t": t})
        seen.add_range(lo, hi)
        high = hi if high is None else max(high, hi)
    return facts
