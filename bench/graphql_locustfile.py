"""Bench-only locustfile for bench/graphql_mutation.py: each user publishes the stamped
mutation in a loop, no think time, to a channel nobody subscribes to (as the bare loop does),
so both sides measure mutation round trips (`subscribe` -> `complete`) and nothing else.

Lives in bench/ (not locustfiles/) so a plain `locust` run never picks it up.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from locust import constant, events, task  # noqa: E402

from bench import _window  # noqa: E402
from socketproof import WebSocketUser, reported  # noqa: E402


class MutationUser(WebSocketUser):
    flow = "graphql-mutation"
    wait_time = constant(0)

    @task
    @reported
    def send(self) -> None:
        self.publish(self.connection(), f"bench-{self.identity}")


@events.test_start.add_listener
def _start_window(environment, **_):  # type: ignore[no-untyped-def]
    _window.start_from_env(lambda: environment.stats.total.num_requests,
                           lambda: environment.stats.total.num_failures)
