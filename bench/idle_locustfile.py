"""Bench-only locustfile: each user holds one recorded, idle ProtocolClient.

Used by bench/idle_connections.py (see there). The user connects in on_start and then
only sleeps; the server's heartbeat pings are answered by each client's receive loop.
Users are spread round-robin over the servers in $BENCH_HOSTS (one reference server
cannot take 10,000 connections under a 20,000 open-files limit: it uses two descriptors
per connection). A monitor greenlet measures the RSS of this process and of the servers
before and after the connections, checks they stay open, writes $BENCH_OUT and ends the run.

With BENCH_MODE=storm (the connect storm) the monitor only waits until every user's
`connect` has succeeded or failed (or $BENCH_SPAWN_TIMEOUT passed) and writes each attempt's
end time, duration and outcome, and the failures by error text: no hold, no RSS.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import resource
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
from locust import constant, events, task  # noqa: E402

from bench._servers import rss as _rss  # noqa: E402
from bench._servers import server_stats as _server_stats  # noqa: E402
from bench._servers import servers_rss as _servers_rss  # noqa: E402
from client import ProtocolClient  # noqa: E402
from client.errors import SocketproofError  # noqa: E402
from client.transport import State  # noqa: E402
from socketproof import WebSocketUser  # noqa: E402

CLIENTS: list[ProtocolClient] = []
HOSTS = [h for h in os.environ.get("BENCH_HOSTS", "").split(",") if h]
STORM = os.environ.get("BENCH_MODE") == "storm"
ATTEMPTS: list[tuple[float, float, bool]] = []  # storm: (wall time at the end, ms, succeeded) per connect
ERRORS: Counter[str] = Counter()  # storm: failed connects by error text
_next_host = itertools.count()


class IdleHoldUser(WebSocketUser):
    flow = "idlebench"
    wait_time = constant(3600)

    def ws_url(self) -> str:
        if not HOSTS:
            return super().ws_url()
        return HOSTS[next(_next_host) % len(HOSTS)] + self.options.ws_path

    def on_start(self) -> None:
        try:
            CLIENTS.append(self.connection())
        except SocketproofError:
            pass  # already in Locust's stats as a failed `connect`; counted as not open

    @task
    def hold(self) -> None:
        """Nothing: the connection stays idle (no reconnect, so a drop stays visible)."""


def _open() -> int:
    return sum(1 for c in CLIENTS if c.state is State.OPEN)


def _pings() -> int:
    """Server pings answered so far, from each connection's recorded history (the client
    keeps only the last 16 ping times)."""
    return sum(c.hooks.h.pings for c in CLIENTS if c.hooks is not None)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _monitor(environment) -> None:  # type: ignore[no-untyped-def]
    n = int(os.environ["BENCH_CONNECTIONS"])
    hold = float(os.environ["BENCH_HOLD"])
    spawn_timeout = float(os.environ["BENCH_SPAWN_TIMEOUT"])
    server_pids = [int(p) for p in os.environ["BENCH_SERVER_PIDS"].split(",")]
    http_urls = os.environ["BENCH_SERVER_HTTPS"].split(",")
    out: dict = {"connections_wanted": n, "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)}
    try:
        gc.collect()
        out["locust_rss_before"], out["server_rss_before"] = _rss(), _servers_rss(server_pids)
        t0 = time.monotonic()
        deadline = t0 + spawn_timeout
        while time.monotonic() < deadline:
            users = environment.runner.user_count if environment.runner else 0
            if len(CLIENTS) >= n or (users >= n and len(CLIENTS) + _failed(environment) >= n):
                break
            gevent.sleep(0.5)
        out["connect_seconds"] = time.monotonic() - t0
        out["connected"] = _open()
        gevent.sleep(2.0)  # let the last handshakes and their garbage settle
        gc.collect()
        out["locust_rss_connected"], out["server_rss_connected"] = _rss(), _servers_rss(server_pids)
        out["server_stats_connected"] = _server_stats(http_urls)
        pings0 = _pings()
        cpu0, t1 = _cpu(), time.monotonic()
        lowest = out["connected"]
        end = t1 + hold
        while time.monotonic() < end:
            gevent.sleep(min(5.0, max(0.0, end - time.monotonic())))
            lowest = min(lowest, _open())
        out["hold_seconds"] = time.monotonic() - t1
        out["locust_cpu_util_holding"] = (_cpu() - cpu0) / out["hold_seconds"]
        out["lowest_open_while_holding"] = lowest
        out["open_at_end"] = _open()
        out["pings_while_holding"] = _pings() - pings0
        gc.collect()
        out["locust_rss_end"], out["server_rss_end"] = _rss(), _servers_rss(server_pids)
        out["server_stats_end"] = _server_stats(http_urls)
        stats = environment.stats
        out["connect_failures"] = _failed(environment)
        out["errors"] = [{"name": e.name, "error": str(e.error)[:200], "occurrences": e.occurrences}
                         for e in list(stats.errors.values())[:10]]
        out["locust_requests"] = stats.total.num_requests
    except Exception as exc:  # noqa: BLE001 - reported to the parent in the result
        out["error"] = repr(exc)
    finally:
        _report(environment, out)


def _report(environment, out: dict) -> None:  # type: ignore[no-untyped-def]
    """Hand the result to the parent (bench/idle_connections.py) and end the run."""
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(out, f)
    environment.runner.quit()


def _failed(environment) -> int:  # type: ignore[no-untyped-def]
    return environment.stats.get("connect", "WS").num_failures


def _storm(environment) -> None:  # type: ignore[no-untyped-def]
    """Wait for every user's connect to end (bounded), then report the attempts and quit."""
    n = int(os.environ["BENCH_CONNECTIONS"])
    deadline = time.monotonic() + float(os.environ["BENCH_SPAWN_TIMEOUT"])
    out: dict = {"connections_wanted": n}
    try:
        while len(ATTEMPTS) < n and time.monotonic() < deadline:
            gevent.sleep(0.1)
        out["users"] = environment.runner.user_count if environment.runner else 0
        out["connected"] = _open()
        out["attempts"] = list(ATTEMPTS)
        out["errors"] = dict(ERRORS)
    except Exception as exc:  # noqa: BLE001 - reported to the parent in the result
        out["error"] = repr(exc)
    finally:
        _report(environment, out)


def _on_request(name: str, response_time: float, exception: BaseException | None = None, **_: object) -> None:
    if name != "connect":
        return
    ATTEMPTS.append((time.time(), response_time, exception is None))
    if exception is not None:
        ERRORS[f"{type(exception).__name__}: {str(exception)[:160]}"] += 1


if STORM:  # only then: in the idle run these lists would count in the RSS measured
    events.request.add_listener(_on_request)


@events.test_start.add_listener
def _start_monitor(environment, **_):  # type: ignore[no-untyped-def]
    if os.environ.get("BENCH_OUT"):
        gevent.spawn(_storm if STORM else _monitor, environment)
