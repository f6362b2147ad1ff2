"""One progress line at a time for headless runs with --only-summary (our locust.conf sets it).

Locust's own progress is its whole request table every 2 s: sixty tables for a one-minute
run push the verdicts off the screen. With --only-summary Locust prints the table once,
at the end, and this prints a line every few seconds instead: elapsed, remaining, users,
requests, failures, throughput and the slowest p95.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent

log = logging.getLogger("socketproof")


def interval(run_time: float | None) -> float:
    """Seconds between lines: about a dozen lines per run, every 5 to 30 s."""
    if not run_time:
        return 10.0
    return min(30.0, max(5.0, run_time / 12))


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def line(elapsed: float, run_time: float | None, runner: Any, rps: float) -> str:
    """`0:15 of 1:00 (0:45 left): 20 users, 1,204 requests, 0 failed, 80.3 req/s, slowest p95 connect 29 ms`."""
    when = f"{clock(elapsed)} of {clock(run_time)} ({clock(run_time - elapsed)} left)" if run_time else clock(elapsed)
    total = runner.stats.total
    text = (
        f"{when}: {runner.user_count} users, {total.num_requests:,} requests, {total.num_failures:,} failed, "
        f"{rps:.1f} req/s"
    )
    p95 = [(entry.get_response_time_percentile(0.95), entry.name) for entry in runner.stats.entries.values()
           if entry.num_requests]
    if p95:
        slowest, name = max(p95)
        text += f", slowest p95 {name} {slowest:.0f} ms"
    return text


def start(environment: Any, note: Callable[[], str] = lambda: "") -> gevent.Greenlet | None:
    """At test_start: the printer greenlet, or None when Locust prints its table (or nobody reads).
    `note()` is added to each line when not empty (the latest disruption's status)."""
    parsed = environment.parsed_options
    if parsed is None or not parsed.headless or not getattr(parsed, "only_summary", False):
        return None
    if environment.shape_class is not None:  # a shape (--capacity) prints its own line per step
        return None
    run_time = getattr(parsed, "run_time", None) or None
    every = interval(run_time)
    started = time.monotonic()

    def loop() -> None:
        # Throughput over the last interval, counted here: a master's current_rps lags its workers.
        last_time, last_count = started, 0
        while True:
            gevent.sleep(every)
            now, count = time.monotonic(), environment.runner.stats.total.num_requests
            rps = (count - last_count) / max(now - last_time, 1e-9)
            last_time, last_count = now, count
            extra = note()
            text = line(now - started, run_time, environment.runner, rps)
            log.info("progress %s", f"{text}; {extra}" if extra else text)

    return gevent.spawn(loop)
