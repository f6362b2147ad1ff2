"""Bench-only locustfile: one recorded echo connection per user, no think time.

Lives in bench/ (not locustfiles/) so a plain `locust` run never picks it up. Run from
the repo root (the bench adds it to sys.path). bench/_window.py measures a steady-state
window inside the process and writes it to $BENCH_OUT.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from locust import constant, events, task  # noqa: E402

from bench import _window  # noqa: E402
from socketproof import WebSocketUser, reported  # noqa: E402

DATA = os.environ.get("BENCH_DATA", "0123456789")
"""Echo payload; with the client's id the frame is about 50 bytes of JSON."""


class EchoUser(WebSocketUser):
    flow = "echo"
    wait_time = constant(0)

    @task
    @reported
    def echo(self) -> None:
        self.connection().echo(DATA)


@events.test_start.add_listener
def _start_window(environment, **_):  # type: ignore[no-untyped-def]
    _window.start_from_env(lambda: environment.stats.total.num_requests,
                           lambda: environment.stats.total.num_failures)
