"""Fan-out: deliveries one Locust process receives and records per second from a feed the server
broadcasts, next to a bare websocket-client receive loop, in one run (issue 26, item 5).

    .venv/bin/python bench/fanout.py [--connections 200,500,1000] [--intervals 0.1,0.02] [--channels 2]
        [--warmup 3] [--window 8] [--kinds bare,locust,off] [--repeat 1]
        [--memory 200,0.02] [--no-cap-table] [--profile 1000,0.02]

Per interval the feed (apps/feed_app.py: Starlette on uvicorn + wsproto, its backend publishing
on each of --channels channels every --interval s) runs as its own process pinned to CPU 0. Per
number of connections M, each kind is a fresh child pinned to CPU 1, subscribed to every channel
in its URL, so the server offers M x channels / interval deliveries a second:

- `bare`: bench/fanout_bare.py, M websocket-client connections under gevent, each looping
  recv -> json.loads -> count (no Locust, no adapter, no recorder);
- `locust`: `locust -f bench/fanout_locustfile.py --headless -u M -r M --protocol
  docs/examples/feed_adapter.py:FeedAdapter --checks all`: M listen-only users, every delivery
  through the adapter, the recorder and the user's on_delivery, as in a real run;
- `off`: the same Locust run with no recorder ($BENCH_RECORD=0, bench-only) and `--checks timing`
  (no check runs): what the recording costs, in CPU and in memory.

Each child measures itself (bench/_fanout.py): once all M are open, a --warmup, then a --window
over which deliveries/s, its CPU (getrusage) and the feed's published count (offered/s) are taken,
and a latency sample (receive time - the feed's `at`) whose growth over the window shows a backlog.
RSS before connecting, once connected and at the end give KB per connection. This process adds the
server's CPU and the rest of the machine's over the same window (runs with other processes over
--max-other-cpu are marked). The ratio per point is locust/bare deliveries per second; client CPU
per delivery is printed too (the fairer comparison when the server is the bound).

--memory M,INTERVAL: one more Locust run at that point under tracemalloc (slower, not timed):
bytes per connection by file and by line, at connect and over the window. --cap-table (on by
default): the recorder alone (client/recording.py -> client/recorder.py, the adapter's Delivery)
fed 0 .. 40 000 deliveries per connection in-process, over --channels and over 8 channels,
tracemalloc per connection at each step:
what the history keeps per delivery and where it stops growing. --profile M,INTERVAL: one Locust
run at that point under py-spy (`pip install py-spy`); self and inclusive time per function.
Results: bench/results/fanout.json (with --no-grid: bench/results/fanout_memory.json).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from apps.feed_app import running_app  # noqa: E402
from bench._fanout import shown_path  # noqa: E402
from bench.locust_echo import pin, raise_nofile, wait_quiet  # noqa: E402

PYTHON = sys.executable
LOCUST = str(Path(PYTHON).with_name("locust"))
ADAPTER = "docs/examples/feed_adapter.py:FeedAdapter"
RESULTS = ROOT / "bench" / "results" / "fanout.json"
EXTRA_RESULTS = ROOT / "bench" / "results" / "fanout_memory.json"  # --no-grid: the grid's figures stay
PROFILE_OUT = ROOT / "bench" / "results" / "profile_fanout.txt"
REPORTS = str(Path(tempfile.gettempdir()) / "socketproof-bench-reports")
SERVER_CPU, CLIENT_CPU = 0, 1
GOAL = 0.8
NEAR_CORE = 0.85  # a process using this share of its core is at its limit
FULL = 0.95  # a CPU this busy (all processes and the kernel) is full
KEEPS_UP = 0.97  # received / (M x channels / interval) at or above this: the client got what was meant
BACKLOG_MS = 100.0  # latency growing more than this over a window: a backlog is building somewhere
KB = 1024.0
DRAIN_TIMEOUT = 20.0


class Sampler:
    """The feed's CPU time, each CPU's busy time and the machine's softirq time, sampled a few
    times a second, read back over a child's window."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.proc = psutil.Process(pid)
        self.period = period
        self.samples: list[tuple[float, float, list[float], float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                t = self.proc.cpu_times()
            except psutil.Error:
                return
            cpus = psutil.cpu_times(percpu=True)
            busy = [sum(c) - c.idle - c.iowait for c in cpus]
            self.samples.append((time.time(), t.user + t.system, busy, sum(c.softirq + c.irq for c in cpus)))

    def between(self, t0: float, t1: float) -> dict[str, Any] | None:
        """Shares of one CPU over [t0, t1]: the feed process, each CPU busy, softirq (all CPUs)."""
        if len(self.samples) < 2:
            return None
        a = min(self.samples, key=lambda s: abs(s[0] - t0))
        b = min(self.samples, key=lambda s: abs(s[0] - t1))
        span = b[0] - a[0]
        if span <= 0:
            return None
        return {"server": (b[1] - a[1]) / span, "cpus": [(y - x) / span for x, y in zip(a[2], b[2], strict=False)],
                "softirq": (b[3] - a[3]) / span}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def channel_names(count: int) -> list[str]:
    return [f"feed-{i}" for i in range(count)]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCKETPROOF_", "BENCH_", "FEED_"))}
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


def bare_cmd(ws_url: str, m: int, channels: int, args: argparse.Namespace) -> list[str]:
    url = f"{ws_url}/ws/feed?channels={','.join(channel_names(channels))}"
    return [PYTHON, "bench/fanout_bare.py", "--url", url, "--connections", str(m), "--channels", str(channels),
            "--warmup", str(args.warmup), "--window", str(args.window), "--connect-timeout", str(args.connect_timeout)]


def locust_cmd(ws_url: str, m: int, args: argparse.Namespace, checks: bool, slack: float = 30.0) -> list[str]:
    budget = int(args.connect_timeout + args.warmup + args.window + slack)  # the monitor ends the run before
    return [LOCUST, "-f", "bench/fanout_locustfile.py", "--headless", "-u", str(m), "-r", str(m),
            "-t", f"{budget}s", "--host", ws_url, "--protocol", ADAPTER, "--identities", str(m),
            "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING", "--checks-report", REPORTS,
            "--checks", "all" if checks else "timing"]


def locust_env(m: int, channels: int, args: argparse.Namespace, record: bool, trace: bool = False) -> dict[str, str]:
    return {"FEED_CHANNELS": ",".join(channel_names(channels)), "BENCH_CONNECTIONS": str(m),
            "BENCH_CHANNELS": str(channels), "BENCH_CONNECT_TIMEOUT": str(args.connect_timeout),
            "BENCH_WARMUP": str(args.warmup), "BENCH_WINDOW": str(args.window),
            "BENCH_RECORD": "1" if record else "0", "BENCH_TRACEMALLOC": "1" if trace else "0"}


def run_child(kind: str, cmd: list[str], env_extra: dict[str, str], timeout: float,
              server: Sampler | None, wrap: list[str] | None = None) -> dict[str, Any]:
    """Run one child pinned to CLIENT_CPU; its own measurement plus the server's CPU and the
    other processes' over its window, and how long it took from the window's end to its exit."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    env = child_env({**env_extra, "BENCH_OUT": str(out)})
    proc = subprocess.Popen([*(wrap or []), *cmd], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        stderr += f"\n[killed after {timeout:.0f}s]"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ended = time.time()
    try:
        r = json.loads(out.read_text())
    except (OSError, ValueError):
        r = {"error": f"no measurement (exit {proc.returncode})"}
    finally:
        out.unlink(missing_ok=True)
    r["kind"] = kind
    r["exit_code"] = proc.returncode
    if "error" in r or proc.returncode not in (0, 1):
        r["stderr_tail"] = stderr[-2500:]
    if kind != "bare":
        if proc.returncode != 0:
            r["summary_tail"] = stdout[-1800:]
        verdict = re.search(r"^agreement\s+(\w+)\s+(\d+)", stdout, re.M)  # the check of a feed nobody stamps
        r["agreement"] = f"{verdict[1]} ({verdict[2]} anomalies)" if verdict else None
    if "wall_t1" in r:
        r["end_s"] = ended - r["wall_t1"]
        seen = server.between(r["wall_t0"], r["wall_t1"]) if server is not None else None
        if seen is not None:
            r["server_cpu_util"] = seen["server"]
            r["server_core_busy"] = seen["cpus"][SERVER_CPU]
            r["client_core_busy"] = seen["cpus"][CLIENT_CPU]
            r["softirq_util"] = seen["softirq"]
            # the rest of the machine: other people's processes, and kernel network work charged to
            # no process (softirq while a CPU idled, ksoftirqd); the latter grows with the rate
            r["other_cpu_util"] = max(0.0, sum(seen["cpus"]) - seen["server"] - r["cpu_util"])
    return r


def per_connection(r: dict[str, Any]) -> None:
    """KB per connection (RSS deltas / connections) and bytes kept per delivery over the window."""
    n = r.get("connected") or 0
    if not n or "rss_end" not in r:
        return
    r["kb_per_conn_connected"] = (r["rss_connected"] - r["rss_before"]) / n / KB
    r["kb_per_conn_end"] = (r["rss_end"] - r["rss_before"]) / n / KB
    got = (r["delivered_total"] - r["delivered_at_connected"]) / n
    r["deliveries_per_conn"] = got
    r["bytes_per_delivery"] = (r["rss_end"] - r["rss_connected"]) / n / got if got else None


def bound(r: dict[str, Any]) -> str:
    """What limited one run: nothing when it received what the feed was meant to offer with no
    backlog building; else which core was full (CPU 0: the feed and kernel work on it) or the client."""
    nominal = r["connections"] * r["channels"] / r["interval"]
    got = r.get("delivered_per_s") or 0.0
    if got >= KEEPS_UP * nominal and (r.get("latency_growth_ms") or 0.0) < BACKLOG_MS:
        return "none"
    who = []
    if (r.get("server_core_busy") or 0.0) >= FULL:
        who.append(f"CPU {SERVER_CPU} full (feed {r.get('server_cpu_util') or 0:.0%})")
    elif (r.get("server_cpu_util") or 0.0) >= NEAR_CORE:
        who.append("feed")
    if (r.get("cpu_util") or 0.0) >= NEAR_CORE or (r.get("client_core_busy") or 0.0) >= FULL:
        who.append(f"client ({r.get('cpu_util') or 0:.0%})")
    return " + ".join(who) or "unclear"


def line(r: dict[str, Any]) -> str:
    if "delivered_per_s" not in r:
        return f"{r['kind']:>6}: failed: {r.get('error')} {r.get('stderr_tail', '')[-800:]}"

    def pc(key: str) -> str:
        v = r.get(key)
        return "  - " if v is None else f"{v:4.0%}"

    offered = r.get("offered_per_s") or 0
    return (f"{r['kind']:>6}: {r['delivered_per_s']:8.0f} deliveries/s ({offered:.0f} published x M)"
            f"  {r['cpu_us_per_delivery'] or 0:5.1f} us/delivery  client {pc('cpu_util')} feed {pc('server_cpu_util')}"
            f" CPU0 {pc('server_core_busy')} CPU1 {pc('client_core_busy')} softirq {pc('softirq_util')}"
            f" other {pc('other_cpu_util')}  latency p50 {r.get('latency_ms_p50') or 0:.1f} ms"
            f" growth {r.get('latency_growth_ms') or 0:+.1f} ms  KB/conn {r.get('kb_per_conn_connected', 0):.1f}"
            f" -> {r.get('kb_per_conn_end', 0):.1f}  open {r.get('open_at_end')}/{r.get('connections_wanted')}"
            f"  end {r.get('end_s', 0):.1f}s  exit {r['exit_code']}"
            + (f"  agreement {r['agreement']}" if r.get("agreement") else "") + f"  bound: {r.get('bound')}")


def drain(app: Any) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while app.metrics()["feed_connections"] > 0 and time.monotonic() < deadline:
        time.sleep(0.2)


def run_point(app: Any, sampler: Sampler, m: int, interval: float, args: argparse.Namespace,
              rep: int) -> list[dict[str, Any]]:
    kinds = args.kinds
    shift = (rep - 1) % len(kinds)
    out = []
    for kind in kinds[shift:] + kinds[:shift]:
        drain(app)
        load = wait_quiet(args.quiet_cpu, args.quiet_timeout) if args.quiet_timeout > 0 else None
        timeout = args.connect_timeout + args.warmup + args.window + 120
        if kind == "bare":
            r = run_child(kind, bare_cmd(app.ws_url, m, args.channels, args), {}, timeout, sampler)
        else:
            r = run_child(kind, locust_cmd(app.ws_url, m, args, checks=kind == "locust"),
                          locust_env(m, args.channels, args, record=kind == "locust"), timeout, sampler)
        r.update({"connections": m, "interval": interval, "channels": args.channels, "rep": rep,
                  "machine_load_before": load})
        per_connection(r)
        r["contaminated"] = (r.get("other_cpu_util") or 0) > args.max_other_cpu
        r["bound"] = bound(r) if "delivered_per_s" in r else None
        print(f"  rep {rep} {line(r)}", flush=True)
        timeline = r.get("rss_timeline") or []
        if len(timeline) >= 10 and r.get("connected"):  # a long window: does memory level off?
            step = max(1, len(timeline) // 6)
            print("         KB/conn over the window (s: deliveries/conn, KB): " + ", ".join(
                f"{t:.0f}: {n / r['connected']:.0f}, {(rss - r['rss_before']) / r['connected'] / KB:.1f}"
                for t, n, rss in timeline[step - 1::step]), flush=True)
        out.append(r)
    return out


def summarize(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    points = []
    keys = sorted({(r["interval"], r["connections"]) for r in runs}, key=lambda k: (-k[0], k[1]))
    for interval, m in keys:
        here = [r for r in runs if r["interval"] == interval and r["connections"] == m and "delivered_per_s" in r]
        row: dict[str, Any] = {"connections": m, "interval": interval, "channels": args.channels,
                               "offered_nominal_per_s": m * args.channels / interval}

        def med(kind: str, key: str, rs: list[dict[str, Any]] = here) -> float | None:
            values = [r[key] for r in rs if r["kind"] == kind and r.get(key) is not None]
            return statistics.median(values) if values else None

        for kind in args.kinds:
            for key in ("delivered_per_s", "offered_per_s", "recorded_per_s", "cpu_util", "cpu_us_per_delivery",
                        "server_cpu_util", "server_core_busy", "client_core_busy", "softirq_util",
                        "other_cpu_util", "latency_ms_p50", "latency_ms_p95",
                        "latency_growth_ms", "kb_per_conn_connected", "kb_per_conn_end", "bytes_per_delivery",
                        "deliveries_per_conn", "end_s"):
                row[f"{kind}_{key}"] = med(kind, key)
            row[f"{kind}_open_at_end"] = min((r.get("open_at_end", 0) for r in here if r["kind"] == kind), default=0)
            row[f"{kind}_runs"] = sum(1 for r in here if r["kind"] == kind)
            row[f"{kind}_contaminated"] = sum(1 for r in here if r["kind"] == kind and r["contaminated"])
        if row.get("bare_delivered_per_s") and row.get("locust_delivered_per_s"):
            row["ratio"] = row["locust_delivered_per_s"] / row["bare_delivered_per_s"]
            row["ratio_per_rep"] = [lo["delivered_per_s"] / ba["delivered_per_s"] for lo, ba in zip(
                [r for r in here if r["kind"] == "locust"], [r for r in here if r["kind"] == "bare"], strict=False)]
        if row.get("bare_cpu_us_per_delivery") and row.get("locust_cpu_us_per_delivery"):
            row["cpu_per_delivery_locust_over_bare"] = (row["locust_cpu_us_per_delivery"]
                                                        / row["bare_cpu_us_per_delivery"])
        if row.get("locust_kb_per_conn_end") is not None and row.get("off_kb_per_conn_end") is not None:
            row["recorder_kb_per_conn"] = row["locust_kb_per_conn_end"] - row["off_kb_per_conn_end"]
        bounds = {r["kind"]: r["bound"] for r in here}
        row["bound"] = (next(iter(bounds.values())) if len(set(bounds.values())) == 1
                        else "; ".join(f"{k}: {b}" for k, b in bounds.items()))
        points.append(row)
    return points


def print_table(points: list[dict[str, Any]], kinds: list[str]) -> None:
    def f(v: Any, fmt: str = "{:.0f}") -> str:
        return "-" if v is None else fmt.format(v)

    def each(p: dict[str, Any], key: str, fmt: str, scale: float = 1.0) -> str:
        return " / ".join(f(None if p.get(f"{k}_{key}") is None else p[f"{k}_{key}"] * scale, fmt) for k in kinds)

    names = " / ".join(kinds)
    print(f"\n| M | interval s | offered/s | deliveries/s {names} | ratio locust/bare | us/delivery {names} "
          f"| client CPU {names} | feed CPU {names} | CPU 0 busy {names} | KB/conn at end {names} | bound |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for p in points:
        print(f"| {p['connections']} | {p['interval']:g} | {f(p['offered_nominal_per_s'])} | "
              f"{each(p, 'delivered_per_s', '{:.0f}')} | **{f(p.get('ratio'), '{:.2f}')}** | "
              f"{each(p, 'cpu_us_per_delivery', '{:.1f}')} | {each(p, 'cpu_util', '{:.0f} %', 100)} | "
              f"{each(p, 'server_cpu_util', '{:.0f} %', 100)} | {each(p, 'server_core_busy', '{:.0f} %', 100)} | "
              f"{each(p, 'kb_per_conn_end', '{:.1f}')} | {p['bound']} |")


# -- memory: the recorder alone, fed in-process -------------------------------------------------


def cap_table(channels: int, connections: int = 20,
              steps: tuple[int, ...] = (0, 1000, 4000, 8000, 12000, 16000, 20000, 40000)) -> list[dict[str, Any]]:
    """Bytes per connection the recorder holds after N deliveries per connection (spread over
    `channels` channels, each with the feed's unique string id), measured with tracemalloc. The
    hooks are the real ones: client.recording.Recording -> client.recorder.ConnectionRecorder."""
    from checks.fold import fold
    from client.adapter import Delivery, Ready
    from client.recorder import Recorder
    from client.recording import Recording

    names = channel_names(channels)
    tracemalloc.start(1)
    try:
        base = tracemalloc.take_snapshot()
        recorder = Recorder("p0", adapter="feed", capabilities=frozenset(), fold=fold)
        recordings = []
        for i in range(connections):
            rec = Recording(recorder.connection(f"fanout-{i}", f"fanout-{i}"))
            rec.opened(Ready(conn_id=f"fanout-{i}", channels=tuple(names)), frozenset())
            recordings.append(rec)
        rows: list[dict[str, Any]] = []
        done = 0
        for step in steps:
            for n in range(done, step):  # the same message to every connection, as a broadcast does
                channel = names[n % channels]
                delivery = Delivery(channel, None, {"channel": channel, "id": f"abcd1234-{n}", "seq": n // channels},
                                    message_id=f"abcd1234-{n}")
                for rec in recordings:
                    rec.delivered(delivery)
            done = step
            snap = tracemalloc.take_snapshot()
            stats = snap.compare_to(base, "lineno")
            stats = [s for s in stats if s.traceback[0].filename not in (tracemalloc.__file__, __file__)]
            total = sum(s.size_diff for s in stats)
            by_line: collections.Counter[str] = collections.Counter()
            for s in stats:
                fr = s.traceback[0]
                if s.size_diff:
                    by_line[f"{shown_path(fr.filename)}:{fr.lineno}"] += s.size_diff
            logs = [ch.log for rec in recordings for ch in rec.hooks.h.received.values() if ch.log is not None]
            rows.append({
                "deliveries_per_conn": step,
                "bytes_per_conn": total / connections,
                "logged_per_conn": sum(len(lg) for lg in logs) / connections,
                "truncated_per_conn": sum(lg.truncated for lg in logs) / connections,
                "top_lines": [(where, size / connections) for where, size in by_line.most_common(6)],
            })
        return rows
    finally:
        tracemalloc.stop()


def print_cap_table(rows: list[dict[str, Any]], channels: int) -> None:
    print(f"\nrecorder alone, {channels} channels, bytes per connection after N deliveries per connection:")
    for row in rows:
        top = ", ".join(f"{w} {b / KB:.1f} KB" for w, b in row["top_lines"][:3])
        print(f"  N={row['deliveries_per_conn']:>6}: {row['bytes_per_conn'] / KB:6.1f} KB "
              f"(logged {row['logged_per_conn']:.0f}, truncated {row['truncated_per_conn']:.0f})  {top}")


# -- memory: the Locust process under tracemalloc ---------------------------------------------


def memory_run(app: Any, m: int, args: argparse.Namespace) -> dict[str, Any]:
    timeout = args.connect_timeout + args.warmup + args.window + 180
    r = run_child("locust", locust_cmd(app.ws_url, m, args, checks=True, slack=150.0),
                  locust_env(m, args.channels, args, record=True, trace=True), timeout, None)
    per_connection(r)
    for name in ("tracemalloc_connect", "tracemalloc_window"):
        block = r.get(name) or {}
        if not block:
            continue
        print(f"\n{name.split('_')[1]}: tracemalloc {block['total_bytes_per_connection'] / KB:.1f} KB per connection")
        for row in block.get("filename", [])[:12]:
            print(f"  {row['bytes_per_connection']:9.0f} B  {row['blocks_per_connection']:6.1f} blocks  {row['where']}")
        for row in block.get("lineno", [])[:15]:
            print(f"  {row['bytes_per_connection']:9.0f} B  {row['blocks_per_connection']:6.1f} blocks  {row['where']}")
    return r


# -- profile -----------------------------------------------------------------------------------


def profile_run(app: Any, m: int, args: argparse.Namespace, top: int = 30) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("profile: py-spy not found (.venv/bin/pip install py-spy)", file=sys.stderr)
        return {}
    PROFILE_OUT.parent.mkdir(parents=True, exist_ok=True)
    wrap = [py_spy, "record", "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(PROFILE_OUT), "--"]
    timeout = args.connect_timeout + args.warmup + args.window + 180
    r = run_child("locust", locust_cmd(app.ws_url, m, args, checks=True, slack=150.0),
                  locust_env(m, args.channels, args, record=True), timeout, None, wrap=wrap)
    print(f"profile run: {line(r)}")
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for raw in PROFILE_OUT.read_text().splitlines() if PROFILE_OUT.exists() else []:
        stack, _, n = raw.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [fr.split(" (")[0] + " (" + fr.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in fr else fr for fr in stack.split(";")]
        self_t[frames[-1]] += count
        for fr in set(frames):
            incl[fr] += count
    prof = {"samples": total,
            "self": [(fr, n / total) for fr, n in self_t.most_common(top)] if total else [],
            "inclusive": [(fr, n / total) for fr, n in incl.most_common(top)] if total else []}
    print(f"{total} samples (whole run: connect, window and the end-of-run checks); raw stacks in "
          f"{PROFILE_OUT.relative_to(ROOT)}\n-- self --")
    for fr, share in prof["self"]:
        print(f"{share:6.1%}  {fr}")
    print("-- inclusive --")
    for fr, share in prof["inclusive"]:
        print(f"{share:6.1%}  {fr}")
    return {"run": r, **prof}


def point_arg(text: str) -> tuple[int, float]:
    m, interval = text.split(",")
    return int(m), float(interval)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="200,500,1000", help="M per point (default 200,500,1000)")
    parser.add_argument("--intervals", default="0.1,0.02",
                        help="the feed's publish interval per channel, seconds (default 0.1,0.02)")
    parser.add_argument("--channels", type=int, default=2, help="channels, each connection on all (default 2)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after all connected (default 3)")
    parser.add_argument("--window", type=float, default=8.0, help="measured seconds (default 8)")
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--kinds", default="bare,locust,off", help="default bare,locust,off")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved repetitions per point (default 1)")
    parser.add_argument("--quiet-cpu", type=float, default=0.15,
                        help="before each run wait until other processes use under this many CPUs (default 0.15)")
    parser.add_argument("--quiet-timeout", type=float, default=20.0, help="longest wait for that (default 20; 0: none)")
    parser.add_argument("--max-other-cpu", type=float, default=0.2,
                        help="a run during which other processes used more CPUs is marked contaminated")
    parser.add_argument("--memory", type=point_arg, default=None, metavar="M,INTERVAL",
                        help="also one Locust run at that point under tracemalloc (where each KB goes)")
    parser.add_argument("--no-cap-table", dest="cap_table", action="store_false",
                        help="skip the in-process recorder memory table")
    parser.add_argument("--profile", type=point_arg, default=None, metavar="M,INTERVAL",
                        help="also one Locust run at that point under py-spy")
    parser.add_argument("--no-grid", dest="grid", action="store_false",
                        help="only --memory / --profile / the cap table")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"result file (default {RESULTS.relative_to(ROOT)}; with --no-grid "
                             f"{EXTRA_RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    args.connections = [int(x) for x in args.connections.split(",") if x]
    args.intervals = [float(x) for x in args.intervals.split(",") if x]
    args.kinds = [k for k in args.kinds.split(",") if k]
    if args.out is None:
        args.out = RESULTS if args.grid else EXTRA_RESULTS
    if set(args.kinds) - {"bare", "locust", "off"}:
        parser.error("--kinds: bare, locust, off")
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        parser.error("needs two CPUs (server on CPU 0, clients on CPU 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    started = time.monotonic()
    result: dict[str, Any] = {"runs": [], "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                              "command": " ".join(["bench/fanout.py", *(argv if argv is not None else sys.argv[1:])]),
                              "load_before": os.getloadavg()}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; feed on CPU {SERVER_CPU}, "
          f"clients on CPU {CLIENT_CPU}; {args.channels} channels, window {args.window:g}s after "
          f"{args.warmup:g}s", flush=True)
    intervals = list(args.intervals) if args.grid else []
    for extra in (args.memory, args.profile):
        if extra is not None and extra[1] not in intervals:
            intervals.append(extra[1])
    failed = False
    for interval in intervals:
        with running_app(interval=interval, channels=args.channels) as app:
            pin(app.process.pid, SERVER_CPU)
            sampler = Sampler(app.process.pid)
            try:
                if args.grid and interval in args.intervals:
                    for m in args.connections:
                        print(f"M={m} interval={interval:g}s: offered {m * args.channels / interval:,.0f} "
                              f"deliveries/s", flush=True)
                        for rep in range(1, args.repeat + 1):
                            result["runs"].extend(run_point(app, sampler, m, interval, args, rep))
                if args.memory is not None and args.memory[1] == interval:
                    drain(app)
                    print(f"memory run (tracemalloc) M={args.memory[0]} interval={interval:g}s", flush=True)
                    result["memory"] = memory_run(app, args.memory[0], args)
                if args.profile is not None and args.profile[1] == interval:
                    drain(app)
                    print(f"profile run (py-spy) M={args.profile[0]} interval={interval:g}s", flush=True)
                    result["profile"] = profile_run(app, args.profile[0], args)
            finally:
                sampler.stop()
                drain(app)
    if result["runs"]:
        result["points"] = summarize(result["runs"], args)
        print_table(result["points"], args.kinds)
        ratios = [p["ratio"] for p in result["points"] if p.get("ratio") is not None]
        if ratios:
            result["lowest_ratio"] = min(ratios)
            print(f"\nlowest ratio locust/bare {min(ratios):.2f} (goal >= {GOAL})")
        failed = any("error" in r for r in result["runs"])
    if args.cap_table:
        result["cap_table"] = {}
        for channels in sorted({args.channels, 8}):
            result["cap_table"][channels] = rows = cap_table(channels)
            print_cap_table(rows, channels)
    result["settings"] = {"connections": args.connections, "intervals": args.intervals, "channels": args.channels,
                          "warmup": args.warmup, "window": args.window, "kinds": args.kinds, "repeat": args.repeat,
                          "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU}
    result["load_after"] = os.getloadavg()
    result["wall_seconds"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({result['wall_seconds']:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
