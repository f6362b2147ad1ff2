#!/usr/bin/env python3
"""Rolling restart: restart each instance behind the load balancer in turn, the next one only
once the previous one accepts connections again, so that one is always serving.

    python docs/examples/rolling_restart.py DIR

DIR holds one `NAME.json` per instance: {"command": [...], "cwd": ".", "port": P, "pid": PID,
"log": "path"}. In name order, per instance: SIGTERM to `pid`; wait until it has exited (a
gateway closes its clients with 1001 and drains first); start `command` again in `cwd`, in its
own session with its output appended to `log` (it outlives this script); wait until
127.0.0.1:P accepts a connection; write the new pid back. Every wait is bounded (--timeout):
an instance that does not stop is killed and the script fails (exit 1), as it does when one
does not come back.

Made for `locust --disrupt 'AT:run python docs/examples/rolling_restart.py DIR'`: the run logs
this output, reports the exit code, and its recovery verdict says what the restart cost
(README, "Rolling restart behind nginx"). Standard library only: copy it next to your own
deploy tooling.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROG = "rolling_restart.py"


def fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return code


def running(pid: int) -> bool:
    """False once `pid` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def restart(path: Path, timeout: float) -> str | None:
    """Restart the instance `path` describes; None when done, else what went wrong."""
    spec = json.loads(path.read_text())
    name, pid, port = path.stem, int(spec["pid"]), int(spec["port"])
    started = time.monotonic()
    print(f"{name}: stopping pid {pid} (port {port})", flush=True)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"{name}: pid {pid} was not running", flush=True)
    if not wait_until(lambda: not running(pid), timeout):
        os.kill(pid, signal.SIGKILL)
        return f"{name}: pid {pid} did not exit within {timeout:g}s of SIGTERM (killed)"
    stopped = time.monotonic()
    with open(spec["log"], "ab") as log:
        child = subprocess.Popen(spec["command"], cwd=spec.get("cwd") or None, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    spec["pid"] = child.pid
    path.write_text(json.dumps(spec))
    if not wait_until(lambda: accepts(port) or child.poll() is not None, timeout) or child.poll() is not None:
        return f"{name}: the new instance (pid {child.pid}) did not accept on port {port} within {timeout:g}s " \
               f"(exit {child.poll()}; see {spec['log']})"
    now = time.monotonic()
    print(f"{name}: back as pid {child.pid}: stopped in {stopped - started:.1f}s, accepting {now - stopped:.1f}s "
          "later", flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the folder of NAME.json instance files")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per wait (default 20)")
    args = parser.parse_args(argv)
    instances = sorted(args.dir.glob("*.json")) if args.dir.is_dir() else []
    if not instances:
        return fail(f"no instance files (NAME.json) in {args.dir}", 2)
    for path in instances:
        try:
            problem = restart(path, args.timeout)
        except (OSError, ValueError, KeyError) as error:
            problem = f"{path.name}: {type(error).__name__}: {error}"
        if problem is not None:
            return fail(problem)
    print(f"rolling restart done: {len(instances)} instance(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
