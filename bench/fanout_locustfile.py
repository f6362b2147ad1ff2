"""Bench-only locustfile for bench/fanout.py: listen-only users of the feed (apps/feed_app.py).

Each user opens one connection through the run's adapter (`--protocol
docs/examples/feed_adapter.py:FeedAdapter`; its channels from $FEED_CHANNELS, in the URL, so the
connection is subscribed from its first frame) in `on_start`, and never writes: no room is joined
(the adapter's SUBSCRIBE is not used), no request, no publish; the task does nothing. Every
delivery goes the client's normal path (adapter, recorder, the user's `ConnectionFacts`), then is
counted (bench/_fanout.py `Tally`, wrapped around the user's `on_delivery`).

$BENCH_RECORD=0 gives every connection no recorder (as bench/checks_locustfile.py does; a bench
switch, not a Socketproof option). A monitor greenlet (bench/_fanout.py) measures the process,
writes $BENCH_OUT and ends the run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gevent  # noqa: E402
from locust import constant, events, task  # noqa: E402

from bench import _fanout  # noqa: E402
from client import Client  # noqa: E402
from client.adapter import SUBSCRIBE, Delivery  # noqa: E402
from client.errors import SocketproofError  # noqa: E402
from client.transport import State  # noqa: E402
from socketproof import WebSocketUser  # noqa: E402

RECORD = os.environ.get("BENCH_RECORD", "1") != "0"
TALLY = _fanout.Tally()
CLIENTS: list[Client] = []


class Counted:
    """The user's `on_delivery`, counted first (and one in SAMPLE_EVERY timed from the feed's stamp)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, delivery: Delivery) -> None:
        tally = TALLY
        n = tally.count = tally.count + 1
        if not n & _fanout.MASK:
            tally.sample(delivery.body)
        self.inner(delivery)


class FeedListener(WebSocketUser):
    flow = "fanout"
    uses: frozenset[str] = frozenset()  # the pre-flight only connects: this flow sends nothing
    wait_time = constant(3600)

    def has(self, capability: str) -> bool:
        """Listen only: the URL's channels are everything this user receives; it joins no room."""
        return capability != SUBSCRIBE and super().has(capability)

    def recorder_for(self, identity: str, label: str) -> Any:
        return super().recorder_for(identity, label) if RECORD else None

    def new_client(self, identity: str, label: str, resume_after: Any = None) -> Client:
        client = super().new_client(identity, label, resume_after)
        client.on_delivery = Counted(client.on_delivery)
        return client

    def on_start(self) -> None:
        try:
            CLIENTS.append(self.connection())
        except SocketproofError:
            pass  # a failed `connect`, already in Locust's stats; counted as not open

    @task
    def listen(self) -> None:
        """Nothing: deliveries arrive on the connection (no reconnect, so a drop stays visible)."""


def _open() -> int:
    return sum(1 for c in CLIENTS if c.state is State.OPEN)


def _recorded() -> int:
    """Deliveries in the recorded histories (ConnectionHistory.deliveries) of the open connections."""
    return sum(c.hooks.h.deliveries for c in CLIENTS if c.hooks is not None)


def _run(environment: Any, tracer: _fanout.Tracer, rss_before: int) -> None:
    env = os.environ
    host = environment.host.rstrip("/")

    def extra() -> dict[str, Any]:
        stats = environment.stats
        return {"connect_failures": stats.get("connect", "WS").num_failures,
                "errors": [{"name": e.name, "error": str(e.error)[:200], "occurrences": e.occurrences}
                           for e in list(stats.errors.values())[:10]],
                "recording": RECORD}

    try:
        _fanout.monitor(
            n=int(env["BENCH_CONNECTIONS"]), open_count=_open, tally=TALLY,
            recorded=_recorded if RECORD else None,
            metrics_url="http" + host[len("ws"):] + "/metrics", channels=int(env["BENCH_CHANNELS"]),
            connect_timeout=float(env["BENCH_CONNECT_TIMEOUT"]), warmup=float(env["BENCH_WARMUP"]),
            window=float(env["BENCH_WINDOW"]), out_path=env["BENCH_OUT"], tracer=tracer,
            rss_before=rss_before, extra=extra)
    finally:
        environment.runner.quit()


@events.test_start.add_listener
def _start(environment: Any, **_: Any) -> None:
    if os.environ.get("BENCH_OUT"):
        tracer = _fanout.start_tracing()  # before any user: the connections' allocations are traced
        gevent.spawn(_run, environment, tracer, _fanout.rss())
