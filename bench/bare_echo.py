"""The bare loop the Locust figures are compared with: N websocket-client connections
under gevent, each doing send -> recv of one echo frame, nothing else (no Locust, no
recorder, no receive greenlet). Used as a child by bench/locust_echo.py.

    python bench/bare_echo.py --url ws://127.0.0.1:PORT/ws --connections 50 --duration 10
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from websocket import WebSocket  # noqa: E402

from bench import _window  # noqa: E402
from client.tokens import mint_token  # noqa: E402

DATA = os.environ.get("BENCH_DATA", "0123456789")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()

    count = [0]
    failures = [0]
    stop = time.monotonic() + args.duration

    def loop(i: int) -> None:
        ws = WebSocket(skip_utf8_validation=True)
        ws.connect(args.url, header={"Authorization": f"Bearer {mint_token(None, f'bare-{i}')}"},
                   suppress_origin=True, timeout=10)
        ws.recv()  # welcome
        ws.recv()  # snapshot
        prefix = secrets.token_hex(4) + "-"
        n = 0
        try:
            while time.monotonic() < stop:
                n += 1
                mid = f"{prefix}{n}"
                ws.send(_dumps({"type": "echo", "data": DATA, "id": mid}))
                reply = json.loads(ws.recv())
                if reply.get("id") == mid:
                    count[0] += 1
                else:
                    failures[0] += 1
        finally:
            ws.close(timeout=1)

    return _window.run_loops(loop, args.connections, args.duration, count, failures)


if __name__ == "__main__":
    sys.exit(main())
