"""Socket.IO emit-with-ack round trips/s: one Locust process (--protocol socketio) next to a
bare websocket-client loop of the same frames, interleaved.

    .venv/bin/python bench/socketio_emit.py [--duration 15] [--connections 20] [--repeat 3]

The Socket.IO test app (apps/socketio_app.py: python-socketio AsyncServer on
uvicorn) runs pinned to CPU 0; each run is a fresh child pinned to CPU 1:
- `bare`: this file with `--bare URL`: N websocket-client connections under gevent, each
  doing the Engine.IO open / CONNECT start-up, then `42<id>["echo","0123456789"]` -> wait for
  `43<id>[...]` (pings answered), hand-built frames, no codec, no Locust, no recorder;
- `locust`: `locust -f bench/socketio_locustfile.py --headless --protocol socketio`, N users
  each emitting the same echo with an ack through the socketio adapter and the client.
Each child measures a steady-state window itself (bench/_window.py); the machinery
(pinning, CPU sampling, quiet waits, contamination) is bench/locust_echo.py's. Prints one
line per run, the medians and the ratio locust/bare; writes bench/results/socketio_emit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "socketio_emit.json"
SECRET = "socketio-bench-secret-of-at-least-32-bytes"
DATA = "0123456789"
GOALS = {"ratio": 0.8}


def bare(url: str, connections: int, duration: float) -> int:
    """The bare loop (a child process): same frames as the adapter, nothing else."""
    from gevent import monkey

    monkey.patch_all()
    from websocket import WebSocket

    from bench import _window
    from client.tokens import mint_token

    count = [0]
    failures = [0]
    stop = time.monotonic() + duration
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    def loop(i: int) -> None:
        ws = WebSocket(skip_utf8_validation=True)
        ws.connect(ws_url, suppress_origin=True, timeout=10)
        assert ws.recv().startswith("0{")  # Engine.IO open
        ws.send('40{"token":"' + mint_token(SECRET, f"bare-{i}") + '"}')
        assert ws.recv().startswith("40{")  # namespace CONNECT answered
        n = 0
        try:
            while time.monotonic() < stop:
                n += 1
                ws.send(f'42{n}["echo","{DATA}"]')
                while True:
                    reply = ws.recv()
                    if reply == "2":
                        ws.send("3")
                        continue
                    break
                if reply == f'43{n}["{DATA}"]':
                    count[0] += 1
                else:
                    failures[0] += 1
            ws.send("41")
        finally:
            ws.close(timeout=1)

    return _window.run_loops(loop, connections, duration, count, failures)


def bare_cmd(url: str, n: int, duration: float) -> list[str]:
    return [sys.executable, "bench/socketio_emit.py", "--bare", url, "--connections", str(n),
            "--duration", str(duration)]


def locust_cmd(url: str, n: int, duration: float) -> list[str]:
    import tempfile

    locust = str(Path(sys.executable).with_name("locust"))
    return [locust, "-f", "bench/socketio_locustfile.py", "--headless", "-u", str(n), "-r", str(n),
            "-t", f"{int(duration)}s", "--host", url, "--protocol", "socketio", "--jwt-secret", SECRET,
            "--only-summary", "--json", "--identities", str(n), "--stop-timeout", "5", "--loglevel", "WARNING",
            "--checks-report", str(Path(tempfile.gettempdir()) / "socketproof-bench-socketio")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bare", metavar="URL", help=argparse.SUPPRESS)  # the child mode
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run (default 15)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window opens (default 4)")
    parser.add_argument("--connections", type=int, default=20, help="connections / Locust users (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--kinds", default="bare,locust", help="which runs (default bare,locust)")
    parser.add_argument("--quiet-cpu", type=float, default=0.15,
                        help="before each run, wait until other processes use under this many CPUs (default 0.15)")
    parser.add_argument("--quiet-timeout", type=float, default=60.0, help="longest wait for that (default 60 s)")
    parser.add_argument("--max-other-cpu", type=float, default=0.15,
                        help="runs during which other processes used more CPUs are marked contaminated")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.bare:
        return bare(args.bare, args.connections, args.duration)

    from apps.socketio_app import running_app
    from bench.locust_echo import CpuSampler, pin, raise_nofile, run_child, wait_quiet

    window = args.duration - args.warmup - 1.0
    if window < 2:
        parser.error("--duration must be at least --warmup + 3 seconds")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two CPUs (server on CPU 0, client on CPU 1)")
    kinds = [kind for kind in args.kinds.split(",") if kind]
    raise_nofile()
    env_extra = {"BENCH_WARMUP": str(args.warmup), "BENCH_WINDOW": str(window)}
    runs: list[dict[str, Any]] = []
    with running_app(SECRET) as app:
        pin(app.process.pid, 0)
        sampler = CpuSampler(app.process.pid)
        try:
            print(f"socketio app {app.url} on CPU 0; clients on CPU 1; {args.connections} connections, "
                  f"{args.duration:.0f}s runs, window {window:.0f}s", flush=True)
            for rep in range(1, args.repeat + 1):
                shift = (rep - 1) % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    cmd = (bare_cmd(app.url, args.connections, args.duration) if kind == "bare"
                           else locust_cmd(app.url, args.connections, args.duration))
                    load = wait_quiet(args.quiet_cpu, args.quiet_timeout) if args.quiet_timeout > 0 else None
                    try:
                        run = run_child(kind, cmd, dict(env_extra), args.duration, sampler)
                    except RuntimeError as error:
                        print(f"rep {rep} {kind}: failed: {error}", file=sys.stderr, flush=True)
                        runs.append({"kind": kind, "rep": rep, "error": str(error)[-3000:], "exit_code": None})
                        continue
                    run.update(rep=rep, machine_load_before=load,
                               contaminated=(run.get("other_cpu_util") or 0) > args.max_other_cpu)
                    runs.append(run)
                    print(f"rep {rep} {kind:>6}: {run['rt_per_s']:7.0f} rt/s  client {run['cpu_us_per_rt'] or 0:6.1f} "
                          f"us/rt ({run['cpu_util']:.0%} CPU)  server {run['server_cpu_util'] or 0:.0%} CPU  "
                          f"other {run['other_cpu_util'] or 0:.0%}  failures {run['failures']}  "
                          f"exit {run['exit_code']}", flush=True)
                    if run["stderr_tail"]:
                        print(run["stderr_tail"], file=sys.stderr)
        finally:
            sampler.stop()

    good = [run for run in runs if "error" not in run]
    use_clean = all(any(r["kind"] == k and not r["contaminated"] for r in good) for k in kinds)

    def median(kind: str, key: str) -> float | None:
        values = [r[key] for r in good if r["kind"] == kind and r[key] is not None
                  and not (use_clean and r["contaminated"])]
        return statistics.median(values) if values else None

    summary: dict[str, Any] = {f"{kind}_{key}": median(kind, key) for kind in kinds
                               for key in ("rt_per_s", "cpu_us_per_rt", "server_cpu_util")}
    if "bare" in kinds and "locust" in kinds and summary["bare_rt_per_s"] and summary["locust_rt_per_s"]:
        summary["ratio"] = summary["locust_rt_per_s"] / summary["bare_rt_per_s"]
        summary["ratio_per_rep"] = [
            lo["rt_per_s"] / ba["rt_per_s"]
            for lo, ba in zip([r for r in good if r["kind"] == "locust"], [r for r in good if r["kind"] == "bare"],
                              strict=False)]
        summary["goal_met"] = summary["ratio"] >= GOALS["ratio"]
    summary["clean_runs_only"] = use_clean
    for kind in kinds:
        if summary.get(f"{kind}_rt_per_s"):
            print(f"median {kind:>6}: {summary[f'{kind}_rt_per_s']:7.0f} rt/s  "
                  f"{summary[f'{kind}_cpu_us_per_rt']:6.1f} us/rt client")
    if "ratio" in summary:
        print(f"ratio locust/bare: {summary['ratio']:.2f} (goal >= {GOALS['ratio']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["bench/socketio_emit.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"duration": args.duration, "warmup": args.warmup, "window": window,
                     "connections": args.connections, "repeat": args.repeat, "server_cpu": 0, "client_cpu": 1},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "goals": GOALS, "summary": summary, "runs": runs, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all("error" not in r and r["exit_code"] == 0 and r["failures"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
