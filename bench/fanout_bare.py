"""The bare baseline bench/fanout.py compares Locust with: N plain websocket-client connections
under gevent, each subscribed to the feed's channels in its URL like the Locust users, one greenlet
each looping `recv()` -> `json.loads` -> count a message (a frame with a `channel`). No Locust, no
adapter, no recorder: the least a client can do with each delivery.

    python bench/fanout_bare.py --url 'ws://127.0.0.1:P/ws/feed?channels=feed-0,feed-1' --connections 200 \\
        --channels 2 [--warmup 3 --window 8 --connect-timeout 30] --out result.json

Measured by bench/_fanout.py exactly as the Locust child is; connections are opened all at once
(Locust's spawner starts them in one burst too); writes JSON to --out and exits.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
from websocket import WebSocket  # noqa: E402

from bench import _fanout  # noqa: E402

TALLY = _fanout.Tally()


class Bare:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.open = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.sockets: list[WebSocket] = []

    def run(self, i: int) -> None:
        ws = WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(self.url, suppress_origin=True, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - counted by type
            self.failed += 1
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return
        self.sockets.append(ws)
        self.open += 1
        tally = TALLY
        loads = json.loads
        mask = _fanout.MASK
        try:
            while True:
                msg = loads(ws.recv())
                if "channel" in msg:
                    n = tally.count = tally.count + 1
                    if not n & mask:
                        tally.sample(msg)
        except Exception as exc:  # noqa: BLE001 - the server closed (too slow: 1013) or the run ends
            self.errors["drop:" + type(exc).__name__] = self.errors.get("drop:" + type(exc).__name__, 0) + 1
        finally:
            self.open -= 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--channels", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT"))
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("no --out and no $BENCH_OUT")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tracer = _fanout.start_tracing()
    rss_before = _fanout.rss()
    bare = Bare(args.url, args.connect_timeout)
    workers = [gevent.spawn(bare.run, i) for i in range(args.connections)]
    base = args.url.split("/ws", 1)[0]
    result = _fanout.monitor(
        n=args.connections, open_count=lambda: bare.open, tally=TALLY, recorded=None,
        metrics_url="http" + base[len("ws"):] + "/metrics", channels=args.channels,
        connect_timeout=args.connect_timeout, warmup=args.warmup, window=args.window, out_path=args.out,
        tracer=tracer, rss_before=rss_before,
        extra=lambda: {"connect_failures": bare.failed, "errors": dict(bare.errors)})
    gevent.killall(workers, timeout=5)
    for ws in bare.sockets:  # measured: end TCP at once (the server sees the disconnect)
        ws.shutdown()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
