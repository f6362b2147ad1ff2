"""The measurement both fan-out children share (bench/fanout_locustfile.py and bench/fanout_bare.py),
so Locust and the bare loop are measured the same way, inside themselves.

`Tally` counts deliveries and samples their latency (receive time - the feed's `at` stamp, every
SAMPLE_EVERY-th delivery). `monitor()` runs in a greenlet of the child: RSS before connecting,
waits (bounded) until every connection is open, RSS once connected, a warm-up, then a window over
which it takes deliveries, CPU (getrusage of this process) and the feed's `feed_published_total`
(GET /metrics), RSS at the end; writes one JSON result to $BENCH_OUT. With $BENCH_TRACEMALLOC
set, tracemalloc snapshots at the same three moments are diffed and grouped by file and by line.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
import tracemalloc
import urllib.request
from array import array
from collections.abc import Callable
from typing import Any

import gevent
import psutil

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STDLIB = os.path.dirname(os.__file__)


def shown_path(filename: str) -> str:
    """A source file as the results may name it, with no machine's folders: repo-relative,
    a package's own path, or `<stdlib>/...`."""
    if filename.startswith(_ROOT + os.sep) and "site-packages" not in filename:
        return os.path.relpath(filename, _ROOT)
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if filename.startswith(_STDLIB + os.sep):
        return "<stdlib>/" + os.path.relpath(filename, _STDLIB)
    return os.path.basename(filename)

SAMPLE_EVERY = 32
"""Every this many deliveries, a latency sample may be taken (a power of two: `n & MASK`)."""
MASK = SAMPLE_EVERY - 1
SAMPLE_GAP = 0.005
"""At most one latency sample per this many seconds (200/s whatever the rate)."""
LATENCY_CAP = 16_384
"""Latency samples per window, in arrays allocated up front: the bench's own memory must not
grow with the deliveries, or it would count in the KB per connection it measures."""
TRACE = os.environ.get("BENCH_TRACEMALLOC", "") not in ("", "0")


class Tally:
    """Deliveries seen by this process, and (receive time, latency s) samples in preallocated arrays."""

    __slots__ = ("count", "times", "lats", "n", "last", "sampling")

    def __init__(self) -> None:
        self.count = 0
        self.times = array("d", bytes(8 * LATENCY_CAP))
        self.lats = array("d", bytes(8 * LATENCY_CAP))
        self.n = 0
        self.last = 0.0
        self.sampling = False  # only inside the window

    def sample(self, body: Any) -> None:
        """A latency from the feed's `data.at` (unix time), if the window is on and none was taken lately."""
        if not self.sampling or self.n >= LATENCY_CAP:
            return
        now = time.time()
        if now - self.last < SAMPLE_GAP:
            return
        try:
            at = body["data"]["at"]
        except (TypeError, KeyError):
            return
        self.last = now
        self.times[self.n] = now
        self.lats[self.n] = now - at
        self.n += 1

    @property
    def samples(self) -> list[tuple[float, float]]:
        return list(zip(self.times[:self.n], self.lats[:self.n], strict=True))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss() -> int:
    """This process's RSS in bytes, after a full collection."""
    gc.collect()
    return psutil.Process().memory_info().rss


def published(metrics_url: str) -> float | None:
    """The feed's `feed_published_total` (None when it does not answer)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("feed_published_total "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _pct(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def latency_figures(samples: list[tuple[float, float]], t0: float, t1: float) -> dict[str, Any]:
    """p50/p95/max latency (ms) of the window's samples, and how much the mean latency grew from
    the window's first quarter to its last (a backlog building up somewhere when clearly > 0)."""
    lat = sorted(s[1] * 1000.0 for s in samples)
    span = t1 - t0
    first = [s[1] for s in samples if s[0] < t0 + span / 4]
    last = [s[1] for s in samples if s[0] >= t1 - span / 4]
    growth = (sum(last) / len(last) - sum(first) / len(first)) * 1000.0 if first and last else None
    return {"latency_samples": len(lat), "latency_ms_p50": _pct(lat, 0.50), "latency_ms_p95": _pct(lat, 0.95),
            "latency_ms_max": lat[-1] if lat else None, "latency_growth_ms": growth}


class Tracer:
    """tracemalloc snapshots (only with $BENCH_TRACEMALLOC): diffs grouped by file and by line."""

    def __init__(self) -> None:
        self.snaps: dict[str, tracemalloc.Snapshot] = {}

    def take(self, name: str) -> None:
        if TRACE:
            gc.collect()
            self.snaps[name] = tracemalloc.take_snapshot().filter_traces(  # tracemalloc's and this bench's own
                [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)])

    def diff(self, a: str, b: str, per: int, top: int = 25) -> dict[str, Any]:
        """Bytes per connection (`per`) allocated between snapshots a and b, by file and by line."""
        if a not in self.snaps or b not in self.snaps:
            return {}
        out: dict[str, Any] = {}
        for key in ("filename", "lineno"):
            stats = self.snaps[b].compare_to(self.snaps[a], key)
            rows = []
            for s in sorted(stats, key=lambda s: -s.size_diff)[:top]:
                frame = s.traceback[0]
                where = shown_path(frame.filename)
                rows.append({"where": where if key == "filename" else f"{where}:{frame.lineno}",
                             "bytes_per_connection": s.size_diff / per, "blocks_per_connection": s.count_diff / per})
            out[key] = rows
            out["total_bytes_per_connection"] = sum(s.size_diff for s in stats) / per
        return out


def monitor(*, n: int, open_count: Callable[[], int], tally: Tally, recorded: Callable[[], int] | None,
            metrics_url: str, channels: int, connect_timeout: float, warmup: float, window: float,
            out_path: str, tracer: Tracer, rss_before: int, extra: Callable[[], dict[str, Any]] | None = None,
            ) -> dict[str, Any]:
    """Measure this child (see the module docstring) and write the result to `out_path`."""
    out: dict[str, Any] = {"connections_wanted": n, "rss_before": rss_before, "pid": os.getpid()}
    try:
        t_start = time.monotonic()
        deadline = t_start + connect_timeout
        while open_count() < n and time.monotonic() < deadline:
            gevent.sleep(0.1)
        out["connect_seconds"] = time.monotonic() - t_start
        out["connected"] = open_count()
        out["rss_connected"] = rss()
        out["delivered_at_connected"] = tally.count
        tracer.take("connected")
        gevent.sleep(warmup)
        tally.sampling = True
        p0, c0, n0, r0, t0 = published(metrics_url), _cpu(), tally.count, recorded() if recorded else None, time.time()
        timeline = []  # (seconds into the window, deliveries so far, RSS without a collection)
        proc = psutil.Process()
        while time.time() < t0 + window:
            gevent.sleep(min(1.0, max(0.0, t0 + window - time.time())))
            timeline.append((round(time.time() - t0, 2), tally.count - n0, proc.memory_info().rss))
        out["rss_timeline"] = timeline
        p1, c1, n1, r1, t1 = published(metrics_url), _cpu(), tally.count, recorded() if recorded else None, time.time()
        tally.sampling = False
        seconds = t1 - t0
        delivered = n1 - n0
        out.update({
            "wall_t0": t0, "wall_t1": t1, "seconds": seconds,
            "delivered": delivered, "delivered_per_s": delivered / seconds,
            "recorded": (r1 - r0) if recorded else None,
            "recorded_per_s": (r1 - r0) / seconds if recorded else None,
            "cpu_s": c1 - c0, "cpu_util": (c1 - c0) / seconds,
            "cpu_us_per_delivery": (c1 - c0) / delivered * 1e6 if delivered else None,
            "published": (p1 - p0) if p0 is not None and p1 is not None else None,
        })
        if out["published"] is not None:  # every connection is subscribed to every channel
            out["offered_per_s"] = out["published"] * out["connected"] / seconds
        out.update(latency_figures(tally.samples, t0, t1))
        out["open_at_end"] = open_count()
        out["delivered_total"] = tally.count
        out["rss_end"] = rss()
        tracer.take("end")
        if tracer.snaps:
            per = max(1, out["connected"])
            out["tracemalloc_connect"] = tracer.diff("before", "connected", per)
            out["tracemalloc_window"] = tracer.diff("connected", "end", per)
            out["tracemalloc_total"] = tracer.diff("before", "end", per)
        if extra is not None:
            out.update(extra())
    except Exception as exc:  # noqa: BLE001 - reported to the parent in the result
        out["error"] = repr(exc)
    with open(out_path, "w") as f:
        json.dump(out, f)
    return out


def start_tracing() -> Tracer:
    """tracemalloc on (with $BENCH_TRACEMALLOC) from here on; the `before` snapshot now."""
    tracer = Tracer()
    if TRACE and not tracemalloc.is_tracing():
        tracemalloc.start(1)
    tracer.take("before")
    return tracer
