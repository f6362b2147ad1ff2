"""Echo round trips/s of the reference server next to a bare flask-sock echo route.

    .venv/bin/python bench/server_echo.py [--duration 5] [--connections 50] [--repeat 3]

Both servers run the same way (gevent monkey-patched, gevent WSGIServer with
server.serve.ClosingHandler, 127.0.0.1) in their own process pinned to CPU 0:
  protocol  python -m server --set rate_limit=0   (the reference server; no per-connection cap)
  bare      bench/server_echo_app.py              (a flask-sock route that echoes each frame)
Each repetition starts a fresh client process pinned to CPU 1 (bench/server_echo_client.py):
N websocket-client connections under gevent, each sending one 40-byte JSON text frame and
waiting for the reply, counted over a steady window after a warm-up. Repetitions alternate
bare, protocol, bare, protocol, ...; the medians and the ratio bare/protocol are printed
(goal: ratio <= 1.5). Server and client CPU over the same window are shown so a saturated
client (which would flatten the ratio) is visible. Everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
GOAL = 1.5
WARMUP = 1.0
READY_MARK = "listening on ws://"

COMMANDS = {
    "protocol": [PYTHON, "-m", "server", "--host", "127.0.0.1", "--port", "0", "--set", "rate_limit=0"],
    "bare": [PYTHON, str(BENCH / "server_echo_app.py")],
}


def pinned(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child (and every thread it will start) to one CPU."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Server:
    """One server child process; `url` once it printed its ready line."""

    def __init__(self, kind: str, cpu: int | None) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.kind = kind
        self.output: list[str] = []
        self.process = subprocess.Popen(
            COMMANDS[kind],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=pinned(cpu),
        )
        self.url = self._wait_ready(15.0)
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_ready(self, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    break
                line = self.process.stdout.readline()
                if not line:
                    break
                self.output.append(line)
                if READY_MARK in line:
                    return line.strip().rsplit(" ", 1)[-1]
        self.stop()
        raise RuntimeError(f"{self.kind} server did not start:\n" + "".join(self.output))

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def run_client(server: Server, args: argparse.Namespace, cpu: int | None) -> dict[str, Any]:
    command = [
        PYTHON,
        str(BENCH / "server_echo_client.py"),
        "--url", server.url,
        "--mode", server.kind,
        "--connections", str(args.connections),
        "--warmup", str(WARMUP),
        "--duration", str(args.duration),
        "--server-pid", str(server.process.pid),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WARMUP + args.duration + 60,
        preexec_fn=pinned(cpu),
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"{server.kind} client failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            f"server output:\n{''.join(server.output[-20:])}"
        )
    return json.loads(lines[-1])


def choose_cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print(f"warning: only CPU(s) {cpus} available: server and client are not pinned apart", file=sys.stderr)
        return None, None
    return cpus[0], cpus[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/server_echo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server, interleaved (default 3)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.repeat < 1:
        parser.error("--duration must be > 0, --connections and --repeat >= 1")

    server_cpu, client_cpu = choose_cpus()
    print(
        f"server echo: {args.connections} connections, {args.duration:g}s window after {WARMUP:g}s warm-up, "
        f"{args.repeat} runs each; server on CPU {server_cpu}, client on CPU {client_cpu}",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "protocol": []}
    servers: list[Server] = []
    try:
        for kind in runs:
            servers.append(Server(kind, server_cpu))
        for rep in range(1, args.repeat + 1):
            for server in servers:
                run = run_client(server, args, client_cpu)
                runs[server.kind].append(run)
                server_us = run["server_cpu"] * run["seconds"] / run["round_trips"] * 1e6 if run["server_cpu"] else 0
                print(
                    f"[{rep}/{args.repeat}] {server.kind:<8} {run['rt_per_s']:9.0f} rt/s  "
                    f"server CPU {run['server_cpu'] or 0:4.0%} ({server_us:5.1f} us/rt)  "
                    f"client CPU {run['client_cpu']:4.0%}  errors {run['errors']}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()

    median = {kind: statistics.median(run["rt_per_s"] for run in items) for kind, items in runs.items()}
    cost = {
        kind: statistics.median(run["server_cpu"] * run["seconds"] / run["round_trips"] * 1e6 for run in items)
        for kind, items in runs.items()
        if all(run["server_cpu"] for run in items)
    }
    ratio = median["bare"] / median["protocol"]
    print(f"median bare     {median['bare']:9.0f} rt/s" + (f"  ({cost['bare']:.1f} server us/rt)" if cost else ""))
    print(
        f"median protocol {median['protocol']:9.0f} rt/s" + (f"  ({cost['protocol']:.1f} server us/rt)" if cost else "")
    )
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"ratio bare/protocol {ratio:.2f} (goal <= {GOAL}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
