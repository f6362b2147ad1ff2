"""The load of bench/server_echo.py: N websocket-client connections under gevent, each
doing request/reply echo of one 40-byte JSON text frame, counted over a steady window.

The same code drives both servers; only the reply check differs (the bare route returns
the frame as is, the protocol server returns an `echo` frame with the same id). Prints
one JSON line: round trips, seconds, errors, own CPU and the server's CPU over the window.

    python bench/server_echo_client.py --url ws://127.0.0.1:PORT/ws --mode protocol \
        --connections 50 --warmup 1 --duration 5 --server-pid PID
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import jwt  # noqa: E402
from websocket import WebSocket  # noqa: E402

SECRET = "socketproof-development-secret-change-me"  # the reference server's default
TEMPLATE = '{"type":"echo","id":"%04d","data":"xxx"}'
assert len(TEMPLATE % 0) == 40


def server_cpu(pid: int) -> float | None:
    """utime + stime of a process, in seconds (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["bare", "protocol"], required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()

    sockets = []
    for i in range(args.connections):
        ws = WebSocket(skip_utf8_validation=True)
        token = jwt.encode({"sub": f"bench-{i}", "exp": time.time() + 3600}, SECRET, algorithm="HS256")
        ws.connect(args.url, header={"Authorization": f"Bearer {token}"}, suppress_origin=True, timeout=10)
        if args.mode == "protocol":
            for expected in ('"welcome"', '"snapshot"'):
                assert expected in ws.recv()
        sockets.append(ws)

    counted = [0]
    errors = [0]
    window_start = time.monotonic() + args.warmup
    window_end = window_start + args.duration
    bare = args.mode == "bare"

    def loop(ws: WebSocket) -> None:
        n = 0
        send, recv, clock = ws.send, ws.recv, time.monotonic
        while True:
            n += 1
            text = TEMPLATE % (n % 10000)
            send(text)
            reply = recv()
            now = clock()
            ok = reply == text if bare else reply.startswith('{"type":"echo"') and text[15:26] in reply
            if ok:
                counted[0] += 1
            else:
                errors[0] += 1
            if now >= window_end:
                return

    workers = [gevent.spawn(loop, ws) for ws in sockets]
    gevent.sleep(max(0.0, window_start - time.monotonic()))
    t0, c0, s0, e0 = time.monotonic(), own_cpu(), server_cpu(args.server_pid), errors[0]
    n0 = counted[0]
    gevent.sleep(max(0.0, window_end - time.monotonic()))
    t1, c1, s1 = time.monotonic(), own_cpu(), server_cpu(args.server_pid)
    n1 = counted[0]
    gevent.joinall(workers, timeout=10)
    failed = [worker for worker in workers if worker.exception is not None]
    for ws in sockets:
        ws.close(timeout=1)
    seconds = t1 - t0
    result = {
        "round_trips": n1 - n0,
        "seconds": seconds,
        "rt_per_s": (n1 - n0) / seconds,
        "errors": errors[0] - e0,
        "failed_connections": len(failed),
        "client_cpu": (c1 - c0) / seconds,
        "server_cpu": (s1 - s0) / seconds if s0 is not None and s1 is not None else None,
    }
    print(json.dumps(result), flush=True)
    if failed:
        print(f"a connection failed: {failed[0].exception!r}", file=sys.stderr)
    return 1 if failed or result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
