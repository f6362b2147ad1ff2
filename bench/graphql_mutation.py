"""GraphQL mutation round trips per second: one Locust process (`--protocol graphql-ws`)
next to a bare loop, against the strawberry-graphql test app (apps/graphql_app.py).

    .venv/bin/python bench/graphql_mutation.py [--duration 15] [--connections 20] [--repeat 3] [--only bare]

The app is pinned to CPU 0, each client run to CPU 1. A round trip is the publish
mutation (`sendMessage(room, body)` with a stamped body of --message-bytes) sent as a
graphql-transport-ws `subscribe` and ended by its `complete`, as the adapter counts it.

- `bare`: this file as a child (`--child bare`): N websocket-client connections under
  gevent, each `connection_init` -> `connection_ack`, then subscribe -> next -> complete
  in a loop with prebuilt JSON: no Locust, no adapter, no recorder.
- `locust`: one `locust --headless` process with bench/graphql_locustfile.py (N users,
  no think time, publish only) over the real client, adapter and recorder.

Each child counts round trips over a steady-state window itself (bench/_window.py); runs
alternate; the medians and the ratio locust/bare are printed and written to
bench/results/graphql_mutation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOCUST = str(Path(PYTHON).with_name("locust"))
RESULTS = ROOT / "bench" / "results" / "graphql_mutation.json"
SERVER_CPU, CLIENT_CPU = 0, 1
SECRET = "graphql-bench-secret-of-at-least-32-bytes"
PUBLISH = "mutation($channel: String!, $stamp: String!) { sendMessage(room: $channel, body: $stamp) { body } }"


def bare_child(url: str, connections: int, duration: float, message_bytes: int) -> int:
    """The bare loop (run in its own process: it monkey-patches for gevent)."""
    from gevent import monkey

    monkey.patch_all()
    from websocket import WebSocket

    sys.path.insert(0, str(ROOT))
    from bench import _window
    from client.tokens import mint_token

    count, failures = [0], [0]
    stop = time.monotonic() + duration

    def loop(i: int) -> None:
        ws = WebSocket(skip_utf8_validation=True)
        ws.connect(url, subprotocols=["graphql-transport-ws"], suppress_origin=True, timeout=10)
        try:
            ws.send(json.dumps({"type": "connection_init", "payload": {"token": mint_token(SECRET, f"bare-{i}")}}))
            assert json.loads(ws.recv())["type"] == "connection_ack"
            n = 0
            while time.monotonic() < stop:
                n += 1
                op_id = str(n)
                body = f"sp1|bare-{i}|room-{i}|{n}|{time.time():.6f}|".ljust(message_bytes, "x")
                ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {
                    "query": PUBLISH, "variables": {"channel": f"room-{i}", "stamp": body}}}))
                while True:  # next, then complete
                    message = json.loads(ws.recv())
                    if message.get("type") == "complete" and message.get("id") == op_id:
                        count[0] += 1
                        break
                    if message.get("type") == "error":
                        failures[0] += 1
                        break
        finally:
            ws.close(timeout=1)

    return _window.run_loops(loop, connections, duration, count, failures)


def run_child(kind: str, cmd: list[str], env_extra: dict[str, str], duration: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, **env_extra, "BENCH_OUT": out, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU % (os.cpu_count() or 1)}))
    try:
        stdout, stderr = proc.communicate(timeout=duration + 90)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise RuntimeError(f"{kind} run did not end in time:\n{stderr[-3000:]}") from None
    try:
        window = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        raise RuntimeError(f"{kind} run wrote no measurement (exit {proc.returncode}):\n{stderr[-3000:]}") from None
    finally:
        Path(out).unlink(missing_ok=True)
    tail = stderr[-1500:] if proc.returncode else ""
    return {"kind": kind, "exit_code": proc.returncode, **window, "stderr_tail": tail}


def commands(kind: str, url: str, args: argparse.Namespace) -> list[str]:
    if kind == "bare":
        ws_url = "ws" + url[len("http"):] + "/graphql"
        return [PYTHON, __file__, "--child", "bare", "--url", ws_url, "--connections", str(args.connections),
                "--duration", str(args.duration), "--message-bytes", str(args.message_bytes)]
    n = str(args.connections)
    return [LOCUST, "-f", "bench/graphql_locustfile.py", "--headless", "-u", n, "-r", n,
            "-t", f"{int(args.duration)}s", "--host", url, "--protocol", "graphql-ws", "--jwt-secret", SECRET,
            "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING",
            "--message-bytes", str(args.message_bytes),
            "--checks-report", str(Path(tempfile.gettempdir()) / "socketproof-bench-graphql")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run (default 15)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window opens (default 4)")
    parser.add_argument("--connections", type=int, default=20, help="connections / Locust users (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--message-bytes", type=int, default=64, help="stamped body size (default 64)")
    parser.add_argument("--only", choices=("bare", "locust"), help="run one kind only")
    parser.add_argument("--child", choices=("bare",), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS, help="result file")
    args = parser.parse_args(argv)
    if args.child == "bare":
        return bare_child(args.url, args.connections, args.duration, args.message_bytes)
    window = args.duration - args.warmup - 1.0
    if window < 2:
        parser.error("--duration must be at least --warmup + 3 seconds")
    sys.path.insert(0, str(ROOT))
    from apps.graphql_app import running_app

    env_extra = {"BENCH_WARMUP": str(args.warmup), "BENCH_WINDOW": str(window)}
    kinds = [args.only] if args.only else ["bare", "locust"]
    runs: list[dict[str, Any]] = []
    with running_app(SECRET, timeout=30) as app:
        for tid in os.listdir(f"/proc/{app.process.pid}/task"):
            try:
                os.sched_setaffinity(int(tid), {SERVER_CPU})
            except OSError:
                pass
        print(f"graphql app {app.url} on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU}; {args.connections} "
              f"connections, {args.duration:.0f}s runs, window {window:.0f}s", flush=True)
        for rep in range(1, args.repeat + 1):
            shift = (rep - 1) % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                try:
                    r = run_child(kind, commands(kind, app.url, args), env_extra, args.duration)
                except RuntimeError as exc:
                    print(f"rep {rep} {kind}: failed: {exc}", file=sys.stderr, flush=True)
                    runs.append({"kind": kind, "rep": rep, "error": str(exc)[-3000:]})
                    continue
                r["rep"] = rep
                runs.append(r)
                print(f"rep {rep} {kind:>6}: {r['rt_per_s']:7.0f} rt/s  {r['cpu_us_per_rt'] or 0:6.1f} us/rt client "
                      f"(client CPU {r['cpu_util']:.0%})  failures {r['failures']}  exit {r['exit_code']}", flush=True)
        app.wait_metrics(timeout=10, graphql_connections=0, graphql_subscriptions=0)
    medians = {kind: statistics.median(r["rt_per_s"] for r in runs if r["kind"] == kind and "rt_per_s" in r)
               for kind in kinds if any(r["kind"] == kind and "rt_per_s" in r for r in runs)}
    ratio = medians["locust"] / medians["bare"] if {"bare", "locust"} <= medians.keys() else None
    print("medians: " + ", ".join(f"{kind} {value:.0f} rt/s" for kind, value in medians.items())
          + (f"; ratio locust/bare {ratio:.2f} (goal >= 0.8)" if ratio is not None else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"connections": args.connections, "duration": args.duration, "window": window,
                                    "medians": medians, "ratio": ratio, "runs": runs}, indent=1))
    return 0 if all("error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
