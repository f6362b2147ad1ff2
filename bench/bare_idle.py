"""The bare baseline bench/idle_connections.py compares Locust with: N plain websocket-client
connections under gevent, opened and held the way a user without Socketproof would (one
`websocket.WebSocket` and one greenlet each, looping `recv_data(control_frame=True)`, so the
server's heartbeat pings are answered by websocket-client's automatic pong, and counted).

    python bench/bare_idle.py --urls ws://127.0.0.1:P1/ws,ws://127.0.0.1:P2/ws --connections 1000 \\
        --rate 300 --hold 10 --out result.json [--server-pids 123,456]

Connection i goes to URL i mod len(URLs), authenticates as `bare-<i>` (Authorization: Bearer,
a token minted like client/tokens.py does for the Socketproof adapter) and counts as connected
once the server's first two frames (welcome, snapshot) arrived, like a Socketproof `connect`.
Idle mode (--hold > 0): RSS (after gc.collect()) before connecting, once all are connected and
after the hold; open connections checked every 5 s and pings counted during the hold. Storm
mode (--hold 0): only each connect attempt's end time, duration and outcome. Writes JSON to --out.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
from websocket import ABNF, WebSocket  # noqa: E402

from bench._servers import rss, servers_rss  # noqa: E402
from client.tokens import mint_token  # noqa: E402

START_FRAMES = 2  # welcome, snapshot


class BareConnections:
    """The connections and their counters; one greenlet per connection runs `hold(i)`."""

    def __init__(self, urls: list[str], timeout: float) -> None:
        self.urls = urls
        self.timeout = timeout
        self.open = 0
        self.pings = 0
        self.attempts: list[tuple[float, float, bool]] = []  # (wall time at the end, ms, succeeded)
        self.errors: Counter[str] = Counter()  # failed connects by exception type
        self.samples: dict[str, str] = {}  # one message per exception type
        self.drops: Counter[str] = Counter()  # open connections that ended, by exception type
        self.sockets: list[WebSocket] = []

    def hold(self, i: int) -> None:
        """Connect as bare-<i>, wait for the start-up frames, then read (and pong) until closed."""
        header = {"Authorization": f"Bearer {mint_token(None, f'bare-{i}')}"}  # minted before the clock starts
        ws = WebSocket(skip_utf8_validation=True)
        t0 = time.perf_counter()
        try:
            ws.connect(self.urls[i % len(self.urls)], header=header, suppress_origin=True, timeout=self.timeout)
            self._start_frames(ws)
        except Exception as exc:  # noqa: BLE001 - every failure is counted by type
            self.attempts.append((time.time(), (time.perf_counter() - t0) * 1000.0, False))
            self._count(self.errors, exc)
            ws.shutdown()
            return
        self.attempts.append((time.time(), (time.perf_counter() - t0) * 1000.0, True))
        ws.settimeout(None)  # idle: block until the next frame, however long
        self.sockets.append(ws)
        self.open += 1
        try:
            self._read(ws)
        except Exception as exc:  # noqa: BLE001
            self._count(self.drops, exc)
        finally:
            self.open -= 1

    def _start_frames(self, ws: WebSocket) -> None:
        seen = 0
        while seen < START_FRAMES:
            opcode, _ = ws.recv_data(control_frame=True)
            if opcode == ABNF.OPCODE_CLOSE:
                raise ConnectionError("closed by the server during start-up")
            if opcode == ABNF.OPCODE_PING:
                self.pings += 1
            else:
                seen += 1

    def _read(self, ws: WebSocket) -> None:
        while True:
            opcode, _ = ws.recv_data(control_frame=True)  # a ping is answered inside
            if opcode == ABNF.OPCODE_PING:
                self.pings += 1
            elif opcode == ABNF.OPCODE_CLOSE:
                self.drops["closed by the server"] += 1
                return

    def _count(self, counter: Counter[str], exc: BaseException) -> None:
        kind = type(exc).__name__
        counter[kind] += 1
        self.samples.setdefault(kind, str(exc)[:200])


def open_paced(conns: BareConnections, n: int, rate: float, burst: bool, workers: list[gevent.Greenlet]) -> None:
    """Start connection i at i/rate s (smooth), or floor(rate) at once every second (burst:
    what Locust's spawner does with -r RATE); rate 0 starts all at once."""
    t0 = time.monotonic()
    per_burst = max(1, int(rate))
    for i in range(n):
        if rate > 0:
            due = t0 + (i // per_burst if burst else i / rate)
            delay = due - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
        workers.append(gevent.spawn(conns.hold, i))


def hold_phase(conns: BareConnections, out: dict[str, Any], hold: float, server_pids: list[int]) -> None:
    """Idle mode after connecting: RSS once connected, the hold, RSS after it."""
    gevent.sleep(2.0)  # let the last handshakes and their garbage settle (as the Locust monitor does)
    gc.collect()
    out["rss_connected"], out["server_rss_connected"] = rss(), servers_rss(server_pids)
    pings0, cpu0, t1 = conns.pings, _cpu(), time.monotonic()
    lowest = conns.open
    end = t1 + hold
    while time.monotonic() < end:
        gevent.sleep(min(5.0, max(0.0, end - time.monotonic())))
        lowest = min(lowest, conns.open)
    out["hold_seconds"] = time.monotonic() - t1
    out["cpu_util_holding"] = (_cpu() - cpu0) / out["hold_seconds"]
    out["lowest_open_while_holding"] = lowest
    out["open_at_end"] = conns.open
    out["pings_while_holding"] = conns.pings - pings0
    gc.collect()
    out["rss_end"], out["server_rss_end"] = rss(), servers_rss(server_pids)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", required=True, help="comma-separated ws:// URLs, used round-robin")
    parser.add_argument("--connections", type=int, required=True, help="connections to open")
    parser.add_argument("--rate", type=float, default=300.0, help="connections started per second (default 300; "
                        "0 = all at once)")
    parser.add_argument("--burst", action="store_true",
                        help="start floor(rate) connections at once each second, like Locust's spawner "
                             "(default: one every 1/rate s)")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="seconds to hold them once connected (default 0: storm mode, no hold, no RSS)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="socket timeout for the upgrade and the start-up frames (default 10)")
    parser.add_argument("--time-limit", type=float, default=180.0,
                        help="longest wait for all connects to end, seconds (default 180)")
    parser.add_argument("--server-pids", default="", help="comma-separated server pids whose RSS to measure too")
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT"), help="JSON result file (default $BENCH_OUT)")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("no --out and no $BENCH_OUT")
    urls = [u for u in args.urls.split(",") if u]
    server_pids = [int(p) for p in args.server_pids.split(",") if p]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # usually inherited already; standalone too
    n = args.connections
    conns = BareConnections(urls, args.connect_timeout)
    workers: list[gevent.Greenlet] = []
    out: dict[str, Any] = {"connections_wanted": n, "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)}
    pacer = None
    try:
        if args.hold > 0:
            gc.collect()
            out["rss_before"], out["server_rss_before"] = rss(), servers_rss(server_pids)
        t0 = time.monotonic()
        pacer = gevent.spawn(open_paced, conns, n, args.rate, args.burst, workers)
        deadline = t0 + args.time_limit
        while len(conns.attempts) < n and time.monotonic() < deadline:
            gevent.sleep(0.1)
        out["connect_seconds"] = time.monotonic() - t0
        out["connected"] = conns.open
        if args.hold > 0:
            hold_phase(conns, out, args.hold, server_pids)
        else:
            out["attempts"] = conns.attempts
        out["connect_failures"] = sum(1 for a in conns.attempts if not a[2])
        out["errors"] = dict(conns.errors)
        out["error_samples"] = conns.samples
        out["drops"] = dict(conns.drops)
    except Exception as exc:  # noqa: BLE001 - reported to the parent in the result
        out["error"] = repr(exc)
    finally:
        with open(args.out, "w") as f:
            json.dump(out, f)
        if pacer is not None:
            pacer.kill()
        gevent.killall(workers, timeout=5)
        for ws in conns.sockets:
            ws.shutdown()
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
