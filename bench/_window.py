"""Steady-state measurement window shared by the bench children (Locust and the bare loop).

After $BENCH_WARMUP seconds, take (time, round trips, failures, own CPU); $BENCH_WINDOW
seconds later take them again and write the deltas as JSON to $BENCH_OUT. Measured
inside the child the same way for both, so connect and import costs stay out of it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable

import gevent


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _snap(count: Callable[[], int], failures: Callable[[], int]) -> tuple[float, int, int, float]:
    return time.time(), count(), failures(), _cpu()


def measure(count: Callable[[], int], failures: Callable[[], int], warmup: float, window: float, out: str) -> None:
    gevent.sleep(warmup)
    t0, n0, f0, c0 = _snap(count, failures)
    gevent.sleep(window)
    t1, n1, f1, c1 = _snap(count, failures)
    n = n1 - n0
    result = {
        "wall_t0": t0,
        "wall_t1": t1,
        "seconds": t1 - t0,
        "round_trips": n,
        "failures": f1 - f0,
        "rt_per_s": n / (t1 - t0),
        "cpu_s": c1 - c0,
        "cpu_us_per_rt": (c1 - c0) / n * 1e6 if n else None,
        "cpu_util": (c1 - c0) / (t1 - t0),
    }
    with open(out, "w") as f:
        json.dump(result, f)


def start_from_env(count: Callable[[], int], failures: Callable[[], int]) -> None:
    out = os.environ.get("BENCH_OUT")
    if not out:
        return
    gevent.spawn(measure, count, failures, float(os.environ["BENCH_WARMUP"]),
                 float(os.environ["BENCH_WINDOW"]), out)


def run_loops(loop: Callable[[int], None], connections: int, duration: float, count: list[int],
              failures: list[int]) -> int:
    """A bare loop's process: one greenlet per connection running `loop(i)`, the window measured,
    one JSON line with the totals; exit code 1 when a loop died."""
    workers = [gevent.spawn(loop, i) for i in range(connections)]
    start_from_env(lambda: count[0], lambda: failures[0])
    gevent.joinall(workers, timeout=duration + 30)
    dead = [g for g in workers if g.exception is not None]
    for g in dead[:1]:
        print(f"bare loop failed: {g.exception!r}", file=sys.stderr)
    gevent.killall(workers, timeout=5)
    print(json.dumps({"round_trips": count[0], "failures": failures[0], "dead": len(dead)}))
    return 1 if dead else 0
