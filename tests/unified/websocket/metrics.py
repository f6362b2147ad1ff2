"""Latency and throughput of the core tests: recorded by tests, reported (never asserted).

Tests record through the `metrics` fixture (`metrics.rtt(ms)`, `metrics.timed(fn, ...)`,
`metrics.throughput(count, seconds)`, `with metrics.measure(count):`). The conftest feeds
test durations in and, at the end of the run, writes reports/core-metrics.json and
prints a short table. Slow tests are noted, as helpers.md says speed is not asserted.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TEST_BUDGET_S = 5.0
SUITE_BUDGET_S = 30.0


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


class TestMetrics:
    """What one test recorded."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self) -> None:
        self.rtts_ms: list[float] = []
        self.count = 0
        self.seconds = 0.0

    def rtt(self, ms: float) -> None:
        self.rtts_ms.append(ms)

    def timed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call fn and record how long it took as one round trip."""
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.rtts_ms.append((time.perf_counter() - t0) * 1000.0)
        return result

    def throughput(self, count: int, seconds: float) -> None:
        self.count += count
        self.seconds += seconds

    @contextlib.contextmanager
    def measure(self, count: int) -> Iterator[None]:
        """`count` messages handled inside the block count towards throughput."""
        t0 = time.perf_counter()
        yield
        self.throughput(count, time.perf_counter() - t0)

    def summary(self) -> dict[str, Any]:
        rate = self.count / self.seconds if self.seconds > 0 else None
        p50, p95 = percentile(self.rtts_ms, 50), percentile(self.rtts_ms, 95)
        return {
            "rtt_samples": len(self.rtts_ms),
            "rtt_p50_ms": None if p50 is None else round(p50, 3),
            "rtt_p95_ms": None if p95 is None else round(p95, 3),
            "messages": self.count,
            "throughput_per_s": None if rate is None else round(rate, 1),
        }


class MetricsStore:
    """Every core test of this run: its metrics, duration (setup + call + teardown) and outcome."""

    def __init__(self) -> None:
        self.tests: dict[str, TestMetrics] = {}
        self.durations: dict[str, float] = {}
        self.outcomes: dict[str, str] = {}

    def for_test(self, nodeid: str) -> TestMetrics:
        return self.tests.setdefault(nodeid, TestMetrics())

    def add_report(self, nodeid: str, when: str, duration: float, outcome: str) -> None:
        self.durations[nodeid] = self.durations.get(nodeid, 0.0) + duration
        if when == "call" or outcome != "passed":
            if self.outcomes.get(nodeid) in (None, "passed"):
                self.outcomes[nodeid] = outcome

    def report(self) -> dict[str, Any]:
        tests = {}
        for nodeid, duration in self.durations.items():
            entry = {"duration_s": round(duration, 3), "outcome": self.outcomes.get(nodeid, "?")}
            entry.update(self.tests.get(nodeid, TestMetrics()).summary())
            if duration > TEST_BUDGET_S:
                entry["note"] = f"over the {TEST_BUDGET_S:.0f} s budget"
            tests[nodeid] = entry
        files: dict[str, float] = {}
        for nodeid, duration in self.durations.items():
            name = nodeid.split("::", 1)[0]
            files[name] = files.get(name, 0.0) + duration
        total = sum(self.durations.values())
        return {
            "total_s": round(total, 3),
            "over_budget": total > SUITE_BUDGET_S,
            "budget_s": {"test": TEST_BUDGET_S, "suite": SUITE_BUDGET_S},
            "files": {name: round(seconds, 3) for name, seconds in sorted(files.items())},
            "tests": tests,
        }

    def write(self, path: Path) -> dict[str, Any]:
        data = self.report()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return data


def table(data: dict[str, Any]) -> list[str]:
    """The terminal summary: one line per test, then per file and the total, with budget notes."""

    def cell(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = [f"{'test':<78} {'secs':>6} {'p50 ms':>8} {'p95 ms':>8} {'msg/s':>9}"]
    for nodeid, entry in data["tests"].items():
        name = nodeid.split("websocket/", 1)[-1]
        if len(name) > 78:
            name = name[:75] + "..."
        line = (
            f"{name:<78} {entry['duration_s']:>6.2f} {cell(entry['rtt_p50_ms']):>8} "
            f"{cell(entry['rtt_p95_ms']):>8} {cell(entry['throughput_per_s'], 0):>9}"
        )
        if "note" in entry:
            line += f"  <- {entry['note']}"
        lines.append(line)
    lines.append("")
    for name, seconds in data["files"].items():
        lines.append(f"{name.split('websocket/', 1)[-1]:<78} {seconds:>6.2f}")
    note = f"  <- over the {SUITE_BUDGET_S:.0f} s budget" if data["over_budget"] else ""
    lines.append(f"{'total of the core files (incl. server start-up)':<78} {data['total_s']:>6.2f}{note}")
    return lines
