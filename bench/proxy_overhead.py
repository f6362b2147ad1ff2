"""What the fault proxy (no faults) costs in echo round trips per second.

One reference server (`rate_limit=0`) and one `python -m socketproof.proxy` in front of it
(no faults: an exact relay). Each run starts a fresh bench/server_echo_client.py: N
connections doing request/reply echo of one 40-byte JSON frame, counted over a window after
a warm-up. Runs alternate direct, proxy, direct, proxy, ...; medians and the ratio
direct/proxy are printed with the machine and the conditions, and the proxy's CPU time per
round trip.

    .venv/bin/python bench/proxy_overhead.py [--duration 5] [--connections 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.process import ServerProcess  # noqa: E402
from socketproof.proxy import ProxyProcess  # noqa: E402

WARMUP = 1.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def run_client(url: str, server_pid: int, args: argparse.Namespace, cpu: int | None) -> dict[str, Any]:
    command = [
        sys.executable, str(ROOT / "bench" / "server_echo_client.py"), "--url", url, "--mode", "protocol",
        "--connections", str(args.connections), "--warmup", str(WARMUP), "--duration", str(args.duration),
        "--server-pid", str(server_pid),
    ]
    result = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=WARMUP + args.duration + 60,
                            preexec_fn=(lambda: pin(0, cpu)) if cpu is not None else None)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"client failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/proxy_overhead.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent connections (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode, interleaved (default 3)")
    args = parser.parse_args(argv)
    if not (0 < args.duration <= 120 and 1 <= args.connections <= 1000 and 1 <= args.repeat <= 20):
        parser.error("bounds: 0 < --duration <= 120, 1 <= --connections <= 1000, 1 <= --repeat <= 20")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    server = ServerProcess({"rate_limit": 0, "max_connections_per_user": 1000})
    proxy: ProxyProcess | None = None
    rows: list[dict[str, Any]] = []
    try:
        ws_url = server.start()
        assert server.process is not None
        pin(server.process.pid, server_cpu)
        proxy = ProxyProcess(ws_url.rsplit("/ws", 1)[0])
        proxy_url = proxy.start() + "/ws"
        assert proxy.process is not None
        for repetition in range(args.repeat):
            for mode, url in (("direct", ws_url), ("proxy", proxy_url)):
                before = cpu_seconds(proxy.process.pid)
                result = run_client(url, server.process.pid, args, client_cpu)
                proxy_cpu = cpu_seconds(proxy.process.pid) - before
                row = {"mode": mode, "repetition": repetition + 1, **result}
                if mode == "proxy":
                    # the proxy's CPU over the whole client run, per round trip at the window's rate (approximate)
                    row["proxy_us_per_rt"] = 1e6 * proxy_cpu / max(1.0, result["rt_per_s"] * (WARMUP + args.duration))
                rows.append(row)
                print(f"{mode:<7} run {repetition + 1}: {result['rt_per_s']:>8.0f} rt/s  errors {result['errors']}  "
                      f"server cpu {result['server_cpu'] or 0:.0%}  client cpu {result['client_cpu']:.0%}", flush=True)
                time.sleep(0.5)
    finally:
        counts = proxy.stop() if proxy is not None else None
        server.stop()
    direct = statistics.median(row["rt_per_s"] for row in rows if row["mode"] == "direct")
    proxied = statistics.median(row["rt_per_s"] for row in rows if row["mode"] == "proxy")
    print()
    print(f"machine: {platform.machine()}, {len(cpus)} CPU(s) usable, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"conditions: {args.connections} connections, 40-byte echo, {args.duration:g} s windows after {WARMUP:g} s "
          f"warm-up, {args.repeat} interleaved repetitions; server pinned to CPU {server_cpu}, client to CPU "
          f"{client_cpu}, proxy unpinned (shares the machine)")
    us = statistics.median(row["proxy_us_per_rt"] for row in rows if row["mode"] == "proxy")
    print(f"median rt/s: direct {direct:.0f}, through the proxy {proxied:.0f}; "
          f"ratio direct/proxy {direct / proxied:.2f}; proxy CPU ~{us:.0f} us per round trip")
    if counts is not None:
        print(f"proxy relayed {counts['connections']} connections, faults injected: {counts['faults'] or 'none'}")
    out = ROOT / "bench" / "results" / "proxy_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"direct_rt_per_s": direct, "proxy_rt_per_s": proxied, "ratio": direct / proxied,
                               "args": vars(args), "runs": rows}, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
