"""How many idle heartbeat connections one Locust process holds, and what each costs.

    .venv/bin/python bench/idle_connections.py [--connections 10000] [--hold 30]

Starts the reference server (heartbeat_interval 5 s so pings flow) and one
`locust -f bench/idle_locustfile.py --headless` process whose users each hold one
recorded ProtocolClient (bench/idle_locustfile.py). All get the open-files limit raised
to the hard limit (setrlimit here, inherited; set again on each server with prlimit).
The reference server needs two descriptors per connection (simple-websocket dup()s the
socket), so when one server cannot take them all under that limit, --servers (default:
as many as needed) reference servers share the connections round-robin; the Locust
process holds all of them. The locustfile measures RSS of Locust and of the servers
before and after connecting, holds the connections for --hold seconds checking they stay
open, and ends the run. Prints KB per connection on both sides and writes
bench/results/idle_connections.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.process import ServerProcess  # noqa: E402

PYTHON = sys.executable
LOCUST = str(Path(PYTHON).with_name("locust"))
RESULTS = ROOT / "bench" / "results" / "idle_connections.json"
GOAL_KB_LOCUST = 20.0


def raise_nofile(need: int) -> int:
    """Raise our soft open-files limit to the hard one (children inherit it); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SystemExit(f"the hard open-files limit ({hard}) is below the {need} this run needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections (default 10000)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them (default 30)")
    parser.add_argument("--spawn-rate", type=float, default=300.0,
                        help="users started per second (default 300; at 1000/s handshakes time out here)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="server heartbeat_interval (default 5)")
    parser.add_argument("--spawn-timeout", type=float, default=180.0, help="max seconds to connect all (default 180)")
    parser.add_argument("--servers", type=int, default=0,
                        help="reference server processes (default 0: as few as the open-files limit allows)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"result file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    n = args.connections
    limit = raise_nofile(n + 1000)
    per_server_fds = 2  # the WSGI socket and simple-websocket's dup() of it
    count = args.servers or -(-(n * per_server_fds) // (limit - 1000))
    budget = args.spawn_timeout + args.hold + 60  # the child ends itself long before this
    settings = {"heartbeat_interval": args.heartbeat, "heartbeat_timeout": 10, "max_connections_per_user": 5}
    servers = [ServerProcess(settings) for _ in range(count)]
    result: dict[str, Any] = {}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = Path(f.name)
    proc: subprocess.Popen[str] | None = None
    started = time.monotonic()
    try:
        hosts, pids, server_limits = [], [], []
        for server in servers:
            url = server.start()
            assert server.process is not None
            pid = server.process.pid
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))  # explicit, in case it did not inherit
            server_limits.append(resource.prlimit(pid, resource.RLIMIT_NOFILE)[0])
            hosts.append(url.rsplit("/ws", 1)[0])
            pids.append(pid)
        host = hosts[0]
        print(f"{count} server(s) {', '.join(hosts)} (open-files limit {min(server_limits)}); "
              f"{n} connections at {args.spawn_rate:.0f}/s, hold {args.hold:.0f}s", flush=True)
        env = {**os.environ, "BENCH_OUT": str(out_path), "BENCH_CONNECTIONS": str(n), "BENCH_HOLD": str(args.hold),
               "BENCH_SPAWN_TIMEOUT": str(args.spawn_timeout), "BENCH_HOSTS": ",".join(hosts),
               "BENCH_SERVER_PIDS": ",".join(map(str, pids)),
               "BENCH_SERVER_HTTPS": ",".join(s.http_url for s in servers), "PYTHONUNBUFFERED": "1"}
        cmd = [LOCUST, "-f", "bench/idle_locustfile.py", "--headless", "-u", str(n), "-r", str(args.spawn_rate),
               "-t", f"{int(budget)}s", "--host", host, "--only-summary", "--json", "--identities", str(n),
               "--stop-timeout", "0", "--loglevel", "WARNING",
               "--checks-report", str(Path(tempfile.gettempdir()) / "socketproof-bench-reports")]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = proc.communicate(timeout=budget + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        try:
            result = json.loads(out_path.read_text())
        except (OSError, ValueError):
            print(f"the Locust run wrote no result (exit {proc.returncode}):\n{stderr[-3000:]}", file=sys.stderr)
            return 1
        result["server_nofile_limit"] = min(server_limits)
        result["servers"] = count
        result["locust_exit_code"] = proc.returncode
        if proc.returncode not in (0, 1) or "error" in result:
            print(stderr[-3000:], file=sys.stderr)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for server in servers:
            server.stop()
        out_path.unlink(missing_ok=True)
        log = "".join(line for server in servers for line in server.output)
        if "Traceback" in log or "ERROR" in log:  # server-side trouble goes into the result, in short
            result["server_log_tail"] = log[-4000:]

    connected = result.get("connected") or 0
    kb = 1024.0
    if connected:
        result["locust_kb_per_connection"] = (result["locust_rss_end"] - result["locust_rss_before"]) / connected / kb
        result["server_kb_per_connection"] = (result["server_rss_end"] - result["server_rss_before"]) / connected / kb
        result["locust_kb_per_connection_connected"] = (
            result["locust_rss_connected"] - result["locust_rss_before"]) / connected / kb
        result["server_kb_per_connection_connected"] = (
            result["server_rss_connected"] - result["server_rss_before"]) / connected / kb
    held = connected >= n and result.get("lowest_open_while_holding", 0) >= n and result.get("open_at_end", 0) >= n
    result["goals_met"] = {"held_all": held,
                           "locust_kb_per_connection": result.get("locust_kb_per_connection", 1e9) <= GOAL_KB_LOCUST}
    result["settings"] = {"connections": n, "hold": args.hold, "spawn_rate": args.spawn_rate,
                          "heartbeat_interval": args.heartbeat, "heartbeat_timeout": 10}
    result["wall_seconds"] = time.monotonic() - started
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    result["command"] = " ".join(["bench/idle_connections.py", *(argv if argv is not None else sys.argv[1:])])
    stats = result.get("server_stats_end") or {}
    print(f"connected {connected}/{n} (connect failures {result.get('connect_failures')}) "
          f"in {result.get('connect_seconds', 0):.1f}s; open while holding >= "
          f"{result.get('lowest_open_while_holding')}, at end {result.get('open_at_end')} "
          f"(server: {stats.get('connections')} connections, {stats.get('heartbeat_timeouts')} heartbeat timeouts); "
          f"{result.get('pings_while_holding')} pings in {result.get('hold_seconds', 0):.0f}s; "
          f"Locust CPU while holding {result.get('locust_cpu_util_holding', 0):.0%}")
    if connected:
        print(f"KB per connection (RSS delta / connections): Locust {result['locust_kb_per_connection']:.1f} "
              f"(goal <= {GOAL_KB_LOCUST:.0f}), server {result['server_kb_per_connection']:.1f} "
              f"(all {count} server processes)")
    print(f"goals met: {result['goals_met']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
