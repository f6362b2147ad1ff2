"""Bench-only locustfile for bench/socketio_emit.py: each user emits `echo` with an ack and
waits for it, no think time, through the socketio adapter and the recorded client.

Lives in bench/ (not locustfiles/) so a plain `locust` run never picks it up. Run with
`--protocol socketio` from the repo root; bench/_window.py measures a steady-state window
inside the process and writes it to $BENCH_OUT.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from locust import constant, events, task  # noqa: E402

from bench import _window  # noqa: E402
from socketproof import WebSocketUser, reported  # noqa: E402

DATA = "0123456789"
"""The bare loop's payload: the frames are `42<id>["echo","0123456789"]` both ways."""


class SocketIOEchoUser(WebSocketUser):
    flow = "echo"
    wait_time = constant(0)

    @task
    @reported
    def echo(self) -> None:
        self.connection().request("echo", DATA)


@events.test_start.add_listener
def _start_window(environment, **_):  # type: ignore[no-untyped-def]
    _window.start_from_env(lambda: environment.stats.total.num_requests,
                           lambda: environment.stats.total.num_failures)
