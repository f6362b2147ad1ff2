"""Bench-only locustfile for bench/checks_overhead.py: echo plus send-to-self, no think time.

$BENCH_RECORD=0 gives every connection no recorder (nothing recorded, so the checks have
nothing to do); any other value records as every real run does. This switch exists only
here, for measuring: it is not a Socketproof option. bench/_window.py measures echo + send
requests over a steady-state window and writes them to $BENCH_OUT.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from locust import constant, events, task  # noqa: E402

from bench import _window  # noqa: E402
from socketproof import WebSocketUser, reported  # noqa: E402

RECORD = os.environ.get("BENCH_RECORD", "1") != "0"
MEASURED = ("echo", "send")
"""Requests the users make; `deliver` (a receipt, not a request) is left out of the count."""


class EchoSendUser(WebSocketUser):
    flow = "bench"
    wait_time = constant(0)

    def recorder_for(self, identity: str, label: str):  # type: ignore[no-untyped-def]
        return super().recorder_for(identity, label) if RECORD else None

    @task(3)
    @reported
    def echo(self) -> None:
        self.connection().echo("0123456789")

    @task(1)
    @reported
    def send(self) -> None:
        self.publish(self.connection(), self.identity)


@events.test_start.add_listener
def _start_window(environment, **_):  # type: ignore[no-untyped-def]
    def count() -> int:
        return sum(e.num_requests for (name, _m), e in environment.stats.entries.items() if name in MEASURED)

    def failures() -> int:
        return sum(e.num_failures for (name, _m), e in environment.stats.entries.items() if name in MEASURED)

    _window.start_from_env(count, failures)
