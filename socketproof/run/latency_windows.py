"""`deliver` latency before, during and after a disruption, cut out of Locust's own stats.

Locust keeps each request name's response times as one cumulative histogram (rounded ms ->
count, `StatsEntry.response_times`; on a master, the workers' reports merged in). A copy taken
at a moment is a snapshot; the difference of two snapshots is the histogram of what was
reported between them. The schedule (socketproof.run.disruptions) snapshots `deliver` WINDOW
seconds before a disruption, at its start, at its end and WINDOW seconds after it, so the
recovery check can say what the disruption did to latency, not only to connections.

On a master the figures move with the workers' stats reports (every 3 s by default), so a
window's edges are that coarse; on a local runner they are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

WINDOW = 10.0
"""Seconds of the `before` and `after` windows (the recovery check's storm window too)."""
PHASES = (("before", "before", "start"), ("during", "start", "end"), ("after", "end", "after"))
"""(phase, from snapshot, to snapshot)."""
DELIVER = ("deliver", "WS")
"""The Locust stats entry (name, method) of message delivery latency."""

Histogram = dict[int, int]
Probe = Callable[[], Histogram]


def between(earlier: Mapping[int, int] | None, later: Mapping[int, int]) -> Histogram:
    """What was reported between two snapshots of one cumulative histogram."""
    earlier = earlier or {}
    out = {ms: count - earlier.get(ms, 0) for ms, count in later.items()}
    return {ms: count for ms, count in out.items() if count > 0}


def summary(histogram: Mapping[int, int]) -> dict[str, Any]:
    """count, p50, p95 and max (ms) of one histogram; the percentiles None when it is empty."""
    total = sum(histogram.values())
    out: dict[str, Any] = {"count": total, "p50": None, "p95": None, "max": None}
    if not total:
        return out
    ordered = sorted(histogram.items())
    out["max"] = ordered[-1][0]
    for name, fraction in (("p50", 0.50), ("p95", 0.95)):
        rank = max(1, -(-total * fraction // 1))  # nearest rank, as checks.recovery.percentile
        seen = 0
        for ms, count in ordered:
            seen += count
            if seen >= rank:
                out[name] = ms
                break
    return out


def phases(snapshots: Mapping[str, Mapping[int, int]]) -> dict[str, dict[str, Any]]:
    """Each phase whose two snapshots were taken: its summary (a run that ended first has fewer)."""
    out = {}
    for phase, start, end in PHASES:
        if start in snapshots and end in snapshots:
            out[phase] = summary(between(snapshots[start], snapshots[end]))
    return out


def locust_probe(environment: Any) -> Probe:
    """A snapshot of this run's `deliver` histogram (empty until the first delivery)."""

    def probe() -> Histogram:
        entry = environment.stats.entries.get(DELIVER)
        return dict(entry.response_times) if entry is not None else {}

    return probe
