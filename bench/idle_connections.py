"""How many idle heartbeat connections one Locust process holds, what each costs next to plain
websocket-client, and (with --storm) how fast both open new connections.

    .venv/bin/python bench/idle_connections.py [--connections 10000] [--hold 30] [--no-baseline]
        [--storm 300,600,1000,2000 [--storm-connections 3000] [--storm-only]]

Starts the reference server (heartbeat_interval 5 s so pings flow) and one
`locust -f bench/idle_locustfile.py --headless` process whose users each hold one
recorded ProtocolClient (bench/idle_locustfile.py). All get the open-files limit raised
to the hard limit (setrlimit here, inherited; set again on each server with prlimit).
The reference server needs two descriptors per connection (simple-websocket dup()s the
socket), so when one server cannot take them all under that limit, --servers (default:
as many as needed) reference servers share the connections round-robin; the Locust
process holds all of them. The locustfile measures RSS of Locust and of the servers
before and after connecting, holds the connections for --hold seconds checking they stay
open, and ends the run.

Baseline (unless --no-baseline): once the servers are back to 0 connections (polled on
/stats), bench/bare_idle.py opens the same number of plain websocket-client connections at
the same rate over the same servers, one greenlet each reading (and auto-ponging) until
closed, and measures itself the same way. Prints KB per connection for both and the ratio
Locust/bare; writes bench/results/idle_connections.json (bare figures under bare_* keys).

Connect storm (--storm RATES): per rate, a fresh Locust run (`-r RATE`, --storm-connections
users, each connecting once) and a fresh bare run opening as many connections at that rate,
in alternating order, each ending by itself after --storm-limit seconds at the latest and
the servers drained to 0 connections before the next. Per run: connections opened per second
(first attempt to last successful connect), failures by error, connect time p50/p95/max
(upgrade to welcome + snapshot, successful connects), and CPU over that window of the client
process, each server and the whole machine (sampled by this process with psutil). Note that
Locust's spawner starts floor(RATE) users at once every second; the bare client paces one
every 1/RATE s unless --storm-bare-burst. One reading per rate says what was at its limit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._servers import wait_no_connections  # noqa: E402
from bench.locust_echo import CpuSampler  # noqa: E402
from server.process import ServerProcess  # noqa: E402

PYTHON = sys.executable
LOCUST = str(Path(PYTHON).with_name("locust"))
BARE = str(ROOT / "bench" / "bare_idle.py")
RESULTS = ROOT / "bench" / "results" / "idle_connections.json"
REPORTS = str(Path(tempfile.gettempdir()) / "socketproof-bench-reports")
GOAL_KB_LOCUST = 15.0
KB = 1024.0
NEAR_CORE = 0.85  # a process using this share of one core (or more) is at its limit
MACHINE_FULL = 0.90  # the machine is saturated when this share of all its CPUs is busy
SAMPLE_PERIOD = 0.05  # seconds between CPU samples during a storm
PEAK_SPAN = 0.5  # seconds over which the peak CPU share of a process is taken
DRAIN_TIMEOUT = 30.0  # longest wait for the servers to reach 0 connections between runs


def raise_nofile(need: int) -> int:
    """Raise our soft open-files limit to the hard one (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(f"the hard open-files limit ({hard}) is below the {need} this run needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Servers:
    """The running reference servers, in round-robin order."""

    processes: list[ServerProcess]
    pids: list[int]
    nofile_limit: int

    @property
    def hosts(self) -> list[str]:
        return [p.ws_url.rsplit("/ws", 1)[0] for p in self.processes]

    @property
    def http_urls(self) -> list[str]:
        return [p.http_url for p in self.processes]


def start_servers(servers: list[ServerProcess], limit: int) -> Servers:
    pids, limits = [], []
    for server in servers:
        server.start()
        assert server.process is not None
        pid = server.process.pid
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))  # explicit, in case it did not inherit
        limits.append(resource.prlimit(pid, resource.RLIMIT_NOFILE)[0])
        pids.append(pid)
    return Servers(servers, pids, min(limits))


def drain(servers: Servers, before: str) -> int:
    """Wait (bounded) until the servers hold no connection, so runs do not overlap; say so if not."""
    left = wait_no_connections(servers.http_urls, DRAIN_TIMEOUT)
    if left:
        print(f"warning: servers still hold {left} connections after {DRAIN_TIMEOUT:.0f}s; "
              f"starting {before} anyway", file=sys.stderr, flush=True)
    return left


@dataclass
class ChildRun:
    """One child's outcome: its JSON result (None when it wrote none), exit code, stderr and,
    when asked for, a CPU sampler that watched it."""

    result: dict[str, Any] | None
    returncode: int | None
    stderr: str
    sampler: CpuSampler | None = None


def run_child(cmd: list[str], env_extra: dict[str, str], timeout: float, sample: bool = False) -> ChildRun:
    """Run a bench child to its end (killed after `timeout` s); it writes its result to $BENCH_OUT."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = Path(f.name)
    env = {**os.environ, **env_extra, "BENCH_OUT": str(out_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = CpuSampler(proc.pid, SAMPLE_PERIOD) if sample else None
    try:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        try:
            result = json.loads(out_path.read_text())
        except (OSError, ValueError):
            result = None
        return ChildRun(result, proc.returncode, stderr, sampler)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sampler is not None:
            sampler.stop()
        out_path.unlink(missing_ok=True)


def locust_cmd(host: str, n: int, rate: float, budget: float, connect_timeout: float) -> list[str]:
    return [LOCUST, "-f", "bench/idle_locustfile.py", "--headless", "-u", str(n), "-r", str(rate),
            "-t", f"{int(budget)}s", "--host", host, "--only-summary", "--json", "--identities", str(n),
            "--request-timeout", str(connect_timeout), "--stop-timeout", "0", "--loglevel", "WARNING",
            "--checks-report", REPORTS]


def bare_cmd(servers: Servers, n: int, rate: float, hold: float, connect_timeout: float, limit: float,
             burst: bool = False) -> list[str]:
    return [PYTHON, BARE, "--urls", ",".join(p.ws_url for p in servers.processes), "--connections", str(n),
            "--rate", str(rate), "--hold", str(hold), "--connect-timeout", str(connect_timeout),
            "--time-limit", str(limit), "--server-pids", ",".join(map(str, servers.pids)),
            *(["--burst"] if burst else [])]


def locust_env(servers: Servers, n: int, hold: float, limit: float, mode: str) -> dict[str, str]:
    return {"BENCH_MODE": mode, "BENCH_CONNECTIONS": str(n), "BENCH_HOLD": str(hold),
            "BENCH_SPAWN_TIMEOUT": str(limit), "BENCH_HOSTS": ",".join(servers.hosts),
            "BENCH_SERVER_PIDS": ",".join(map(str, servers.pids)), "BENCH_SERVER_HTTPS": ",".join(servers.http_urls)}


# -- idle connections ----------------------------------------------------------------------


def idle_locust(args: argparse.Namespace, servers: Servers) -> dict[str, Any]:
    """The Locust idle run's result (the monitor's keys), or exit with its stderr."""
    n = args.connections
    budget = args.spawn_timeout + args.hold + 60  # the child ends itself long before this
    run = run_child(locust_cmd(servers.hosts[0], n, args.spawn_rate, budget, args.connect_timeout),
                    locust_env(servers, n, args.hold, args.spawn_timeout, "idle"), budget + 60)
    if run.result is None:
        raise SystemExit(f"the Locust run wrote no result (exit {run.returncode}):\n{run.stderr[-3000:]}")
    result = run.result
    result["locust_exit_code"] = run.returncode
    if run.returncode not in (0, 1) or "error" in result:
        print(run.stderr[-3000:], file=sys.stderr)
    return result


def idle_bare(args: argparse.Namespace, servers: Servers) -> dict[str, Any]:
    """The bare run's result with every key prefixed `bare_`."""
    budget = args.spawn_timeout + args.hold + 60
    run = run_child(bare_cmd(servers, args.connections, args.spawn_rate, args.hold, args.connect_timeout,
                             args.spawn_timeout), {}, budget + 60)
    if run.result is None:
        print(f"the bare run wrote no result (exit {run.returncode}):\n{run.stderr[-3000:]}", file=sys.stderr)
        return {"bare_error": f"no result, exit {run.returncode}"}
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
    out = {f"bare_{key}": value for key, value in run.result.items()}
    out["bare_exit_code"] = run.returncode
    return out


def per_connection(result: dict[str, Any], side: str, connected: int) -> None:
    """KB per connection (RSS delta / connections) of `side` (locust, server, bare, bare_server),
    after the hold and right after connecting."""
    before = result.get(f"{side}_rss_before")
    for when, suffix in (("end", ""), ("connected", "_connected")):
        after = result.get(f"{side}_rss_{when}")
        if connected and before is not None and after is not None:
            result[f"{side}_kb_per_connection{suffix}"] = (after - before) / connected / KB


def idle_figures(result: dict[str, Any], n: int) -> bool:
    """Add the per-connection figures and goals to `result`; True when Locust held all."""
    connected = result.get("connected") or 0
    bare_connected = result.get("bare_connected") or 0
    for side, count in (("locust", connected), ("server", connected), ("bare", bare_connected),
                        ("bare_server", bare_connected)):
        per_connection(result, side, count)
    held = connected >= n and result.get("lowest_open_while_holding", 0) >= n and result.get("open_at_end", 0) >= n
    result["goals_met"] = {"held_all": held,
                           "locust_kb_per_connection": result.get("locust_kb_per_connection", 1e9) <= GOAL_KB_LOCUST}
    if "bare_connected" in result:
        result["bare_held_all"] = (bare_connected >= n and result.get("bare_lowest_open_while_holding", 0) >= n
                                   and result.get("bare_open_at_end", 0) >= n)
    if result.get("locust_kb_per_connection") and result.get("bare_kb_per_connection"):
        result["ratio_locust_to_bare"] = result["locust_kb_per_connection"] / result["bare_kb_per_connection"]
    return held


def print_idle(result: dict[str, Any], n: int, servers: int) -> None:
    stats = result.get("server_stats_end") or {}
    print(f"Locust: connected {result.get('connected') or 0}/{n} (connect failures {result.get('connect_failures')}) "
          f"in {result.get('connect_seconds', 0):.1f}s; open while holding >= "
          f"{result.get('lowest_open_while_holding')}, at end {result.get('open_at_end')} "
          f"(server: {stats.get('connections')} connections, {stats.get('heartbeat_timeouts')} heartbeat timeouts); "
          f"{result.get('pings_while_holding')} pings in {result.get('hold_seconds', 0):.0f}s; "
          f"Locust CPU while holding {result.get('locust_cpu_util_holding', 0):.0%}")
    if "bare_connected" in result:
        errors = f" {result['bare_errors']}" if result.get("bare_errors") else ""
        print(f"bare:   connected {result['bare_connected']}/{n} (connect failures "
              f"{result.get('bare_connect_failures')}{errors}) "
              f"in {result.get('bare_connect_seconds', 0):.1f}s; open while holding >= "
              f"{result.get('bare_lowest_open_while_holding')}, at end {result.get('bare_open_at_end')}; "
              f"{result.get('bare_pings_while_holding')} pings in {result.get('bare_hold_seconds', 0):.0f}s; "
              f"bare CPU while holding {result.get('bare_cpu_util_holding', 0):.0%}")
    if "locust_kb_per_connection" in result:
        line = (f"KB per connection (RSS delta / connections): Locust {result['locust_kb_per_connection']:.1f} "
                f"(goal <= {GOAL_KB_LOCUST:.0f})")
        if "bare_kb_per_connection" in result:
            line += (f", bare websocket-client {result['bare_kb_per_connection']:.1f}, "
                     f"ratio Locust/bare {result.get('ratio_locust_to_bare', float('nan')):.2f}")
        line += f"; server {result['server_kb_per_connection']:.1f} (all {servers} server processes, Locust run"
        if "bare_server_kb_per_connection" in result:
            line += f"; {result['bare_server_kb_per_connection']:.1f} in the bare run"
        print(line + ")")


# -- connect storm --------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def connect_figures(attempts: list[list[Any]], n: int) -> dict[str, Any]:
    """Rate, window and connect times from (end wall time, ms, ok) per attempt. The window runs
    from the first attempt's start to the last successful connect (the last end if none)."""
    ok = [a for a in attempts if a[2]]
    if not attempts:
        return {"ok": 0, "failed": 0, "unfinished": n, "window": None, "opened_per_s": 0.0}
    first = min(a[0] - a[1] / 1000.0 for a in attempts)
    last = max(a[0] for a in (ok or attempts))
    times = sorted(a[1] for a in ok)
    span = last - first
    return {"ok": len(ok), "failed": len(attempts) - len(ok), "unfinished": n - len(attempts),
            "window": (first, last), "window_s": span, "opened_per_s": len(ok) / span if span > 0 else 0.0,
            "connect_ms_p50": percentile(times, 0.50), "connect_ms_p95": percentile(times, 0.95),
            "connect_ms_max": times[-1] if times else None}


def peak(sampler: CpuSampler, t0: float, t1: float, machine: bool = False, span: float = PEAK_SPAN) -> float | None:
    """Highest share of one core (CPUs busy, for the machine) over any `span` seconds inside
    [t0, t1]: a process can be at its limit during a burst while its average over a window
    with retry waits looks low."""
    col = 2 if machine else 1
    samples = [s for s in list(sampler.samples) if t0 - SAMPLE_PERIOD <= s[0] <= t1 + SAMPLE_PERIOD]
    best, j = None, 0
    for i, a in enumerate(samples):
        j = max(j, i + 1)
        while j < len(samples) and samples[j][0] - a[0] < span:
            j += 1
        if j >= len(samples):
            break
        b = samples[j]
        best = max(best or 0.0, (b[col] - a[col]) / (b[0] - a[0]))
    return best


def _share_of_machine(cpus: float | None) -> float | None:
    return cpus / (os.cpu_count() or 1) if cpus is not None else None


def cpu_figures(window: tuple[float, float] | None, client: CpuSampler | None,
                servers: list[CpuSampler]) -> dict[str, Any]:
    """CPU over the window as a share of one core per process, and of all CPUs for the machine."""
    if window is None or client is None or window[1] <= window[0]:
        return {"client_cpu": None, "server_cpu": [None] * len(servers), "machine_cpu": None,
                "client_cpu_peak": None, "server_cpu_peak": [None] * len(servers), "machine_cpu_peak": None}
    t0, t1 = window
    wall = t1 - t0

    def util(sampler: CpuSampler, machine: bool = False) -> float | None:
        used = sampler.between(t0, t1, machine=machine)
        return used / wall if used is not None else None

    machine = util(client, machine=True)
    return {"client_cpu": util(client), "server_cpu": [util(s) for s in servers],
            "machine_cpu": _share_of_machine(machine),
            "client_cpu_peak": peak(client, t0, t1), "server_cpu_peak": [peak(s, t0, t1) for s in servers],
            "machine_cpu_peak": _share_of_machine(peak(client, t0, t1, machine=True))}


def listen_overflows() -> int | None:
    """The machine's count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows in /proc/net/netstat), or None where unreadable. A dropped SYN is
    retried by the client after 1 s, 3 s, ...: handshake time that is not CPU."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names and names[0] == "TcpExt:" and "ListenOverflows" in names:
            return int(values[names.index("ListenOverflows")])
    return None


def storm_run(kind: str, rate: float, args: argparse.Namespace, servers: Servers,
              samplers: list[CpuSampler]) -> dict[str, Any]:
    """One storm run of `kind` (locust or bare) at `rate`, as one table row."""
    n, limit = args.storm_connections, args.storm_limit
    if kind == "locust":
        cmd = locust_cmd(servers.hosts[0], n, rate, limit + 30, args.connect_timeout)
        env = locust_env(servers, n, 0.0, limit, "storm")
    else:
        cmd = bare_cmd(servers, n, rate, 0.0, args.connect_timeout, limit, burst=args.storm_bare_burst)
        env = {}
    overflows0 = listen_overflows()
    run = run_child(cmd, env, limit + 60, sample=True)
    overflows1 = listen_overflows()
    row: dict[str, Any] = {"kind": kind, "rate": rate, "connections": n, "exit_code": run.returncode,
                           "listen_overflows": overflows1 - overflows0 if overflows0 is not None
                           and overflows1 is not None else None}
    if run.result is None or "error" in run.result:
        row["error"] = (run.result or {}).get("error") or f"no result, exit {run.returncode}: {run.stderr[-500:]}"
        return row
    figures = connect_figures(run.result["attempts"], n)
    window = figures.pop("window")
    row.update(figures)
    row.update(cpu_figures(window, run.sampler, samplers))
    row["errors"] = run.result.get("errors", {})
    if run.result.get("error_samples"):
        row["error_samples"] = run.result["error_samples"]
    return row


def storm(args: argparse.Namespace, servers: Servers) -> list[dict[str, Any]]:
    """Every storm run, servers drained to 0 connections before each; printed as it goes."""
    rows: list[dict[str, Any]] = []
    samplers = [CpuSampler(pid, SAMPLE_PERIOD) for pid in servers.pids]
    try:
        print(f"connect storm: {args.storm_connections} connections per run, at most {args.storm_limit:.0f}s each; "
              f"CPU as share of one core per process, machine as share of all {os.cpu_count()} CPUs", flush=True)
        print(STORM_HEADER, flush=True)
        for i, rate in enumerate(args.storm):
            for kind in (("locust", "bare") if i % 2 == 0 else ("bare", "locust")):
                left = drain(servers, f"the {kind} storm at {rate:g}/s")
                row = storm_run(kind, rate, args, servers, samplers)
                row["server_connections_before"] = left
                rows.append(row)
                print(storm_line(row), flush=True)
            pair = {r["kind"]: r for r in rows if r["rate"] == rate}
            print(f"  reading at {rate:g}/s: " + "; ".join(f"{k}: {reading(pair[k])}" for k in ("locust", "bare")),
                  flush=True)
    finally:
        for sampler in samplers:
            sampler.stop()
    return rows


STORM_HEADER = (f"{'kind':<7}{'rate/s':>7}{'opened/s':>9}{'ok':>6}{'failed':>7}{'p50 ms':>8}{'p95 ms':>8}"
                f"{'max ms':>8}{'window':>8}{'client':>7}  {'servers':<12}{'machine':>8}{'overflows':>10}  errors")


def _pct(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def _ms(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def storm_line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['kind']:<7}{row['rate']:>7g}  failed: {row['error']}"
    servers = " ".join(_pct(u) for u in row["server_cpu"])
    errors = ", ".join(f"{count} x {text}" for text, count in row["errors"].items())
    overflows = row["listen_overflows"] if row["listen_overflows"] is not None else "-"
    if row["unfinished"]:
        errors = f"{row['unfinished']} never ended; " + errors
    return (f"{row['kind']:<7}{row['rate']:>7g}{row['opened_per_s']:>9.0f}{row['ok']:>6}{row['failed']:>7}"
            f"{_ms(row.get('connect_ms_p50')):>8}{_ms(row.get('connect_ms_p95')):>8}{_ms(row.get('connect_ms_max')):>8}"
            f"{row.get('window_s', 0):>7.1f}s{_pct(row['client_cpu']):>7}  {servers:<12}"
            f"{_pct(row['machine_cpu']):>8}{overflows:>10}"
            f"  {errors}")


def _named(row: dict[str, Any], suffix: str = "") -> dict[str, float | None]:
    return {"client": row[f"client_cpu{suffix}"],
            **{f"server {i + 1}": u for i, u in enumerate(row[f"server_cpu{suffix}"])}}


def _at_core(shares: dict[str, float | None]) -> list[str]:
    """Processes at or near a full core, busiest first."""
    hot = sorted(((u, name) for name, u in shares.items() if u is not None and u >= NEAR_CORE), reverse=True)
    return [f"{name} {u:.0%}" for u, name in hot]


def reading(row: dict[str, Any]) -> str:
    """What was at its limit during one storm run, in a few words: a process at a core over the
    window, else the machine, else a process at a core in bursts, else nothing (waiting)."""
    if "error" in row:
        return "no result"
    hot, spikes = _at_core(_named(row)), _at_core(_named(row, "_peak"))
    machine, machine_peak = row["machine_cpu"], row["machine_cpu_peak"]
    bad = row["failed"] + row["unfinished"]
    kept_up = row["opened_per_s"] >= 0.9 * row["rate"] and not bad
    text = "kept up" if kept_up else (
        f"{row['opened_per_s']:.0f}/s of {row['rate']:g}/s" + (f", {bad} not connected" if bad else ""))
    if hot:
        text += f": bound by {', '.join(hot)} of a core"
        if machine is not None and machine >= MACHINE_FULL:
            text += f" (machine {machine:.0%} busy: the processes share the cores)"
    elif machine is not None and machine >= MACHINE_FULL:
        text += f": machine saturated ({machine:.0%} of all CPUs), no single process at a core"
    elif spikes:
        text += (f": at a core only in bursts ({PEAK_SPAN:g} s peaks: {', '.join(spikes)}"
                 + (f", machine {machine_peak:.0%}" if machine_peak is not None else "")
                 + f"), window average {', '.join(f'{k} {_pct(v)}' for k, v in _named(row).items())}")
    elif kept_up:
        text += ", no process near a core"
    else:
        text += ": no process near a core, machine not saturated (waiting, not CPU)"
    if row["listen_overflows"]:
        text += (f"; listen queue overflowed {row['listen_overflows']}x (dropped SYNs are retried after 1 s, 3 s, "
                 f"...: the connect p95/max)")
    return text


# -- main -------------------------------------------------------------------------------------


def rates(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of rates: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers: {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections (default 10000)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them (default 30)")
    parser.add_argument("--spawn-rate", type=float, default=300.0,
                        help="users (and bare connections) started per second in the idle runs "
                             "(default 300; at 1000/s handshakes time out here)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="server heartbeat_interval (default 5)")
    parser.add_argument("--spawn-timeout", type=float, default=180.0, help="max seconds to connect all (default 180)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="handshake timeout of both clients, seconds (Locust --request-timeout; default 10)")
    parser.add_argument("--servers", type=int, default=0,
                        help="reference server processes (default 0: as few as the open-files limit allows)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the bare websocket-client idle run (default: run it after the Locust one)")
    parser.add_argument("--storm", type=rates, default=None, metavar="RATES",
                        help="connect storm at these comma-separated rates per second, e.g. 300,600,1000,2000 "
                             "(default: none); the idle runs still come first unless --storm-only")
    parser.add_argument("--storm-connections", type=int, default=3000,
                        help="connections per storm run (default 3000)")
    parser.add_argument("--storm-limit", type=float, default=60.0,
                        help="wall-time limit of each storm run, seconds; connects not ended by then count as "
                             "never ended (default 60)")
    parser.add_argument("--storm-bare-burst", action="store_true",
                        help="bare storm client starts floor(RATE) connections at once every second, as Locust's "
                             "spawner does (default: one every 1/RATE s)")
    parser.add_argument("--storm-only", action="store_true", help="skip the idle runs (default: run them)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.storm_only and not args.storm:
        parser.error("--storm-only needs --storm")
    if args.storm and args.storm_connections / min(args.storm) + args.connect_timeout > args.storm_limit:
        parser.error(f"{args.storm_connections} connections at {min(args.storm):g}/s do not fit in "
                     f"--storm-limit {args.storm_limit:g}s (plus the {args.connect_timeout:g}s connect timeout)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n = args.connections
    most = max(0 if args.storm_only else n, args.storm_connections if args.storm else 0)
    limit = raise_nofile(most + 1000)
    per_server_fds = 2  # the WSGI socket and simple-websocket's dup() of it
    count = args.servers or -(-(most * per_server_fds) // (limit - 1000))
    settings = {"heartbeat_interval": args.heartbeat, "heartbeat_timeout": 10, "max_connections_per_user": 5}
    processes = [ServerProcess(settings) for _ in range(count)]
    result: dict[str, Any] = {}
    held = True
    started = time.monotonic()
    try:
        servers = start_servers(processes, limit)
        print(f"{count} server(s) {', '.join(servers.hosts)} (open-files limit {servers.nofile_limit})", flush=True)
        if not args.storm_only:
            print(f"idle: {n} connections at {args.spawn_rate:g}/s, hold {args.hold:g}s; Locust"
                  + (", then bare websocket-client" if args.baseline else ""), flush=True)
            result = idle_locust(args, servers)
            if args.baseline:
                result["bare_server_connections_before"] = drain(servers, "the bare run")
                result.update(idle_bare(args, servers))
            held = idle_figures(result, n)
            print_idle(result, n, count)
            print(f"goals met: {result['goals_met']}", flush=True)
        if args.storm:
            result["storm"] = storm(args, servers)
        result["server_nofile_limit"] = servers.nofile_limit
        result["servers"] = count
    finally:
        for server in processes:
            server.stop()
        log = "".join(line for server in processes for line in server.output)
        if "Traceback" in log or "ERROR" in log:  # server-side trouble goes into the result, in short
            result["server_log_tail"] = log[-4000:]

    result["settings"] = {"connections": n, "hold": args.hold, "spawn_rate": args.spawn_rate,
                          "heartbeat_interval": args.heartbeat, "heartbeat_timeout": 10,
                          "connect_timeout": args.connect_timeout, "baseline": args.baseline,
                          "storm": args.storm, "storm_connections": args.storm_connections,
                          "storm_limit": args.storm_limit, "storm_bare_burst": args.storm_bare_burst}
    result["wall_seconds"] = time.monotonic() - started
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    result["command"] = " ".join(["bench/idle_connections.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    bare_ok = result.get("bare_held_all", True)
    storm_ok = all("error" not in row for row in result.get("storm", []))
    return 0 if held and bare_ok and storm_ok else 1


if __name__ == "__main__":
    sys.exit(main())
