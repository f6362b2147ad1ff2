"""Idle: hold a connection open, answer the server's heartbeat pings, notice if it dies."""

from locust import constant, task

from client.transport import State
from client.errors import ConnectionClosed
from socketproof.users import WebSocketUser, reported

REFRESH_EVERY = 5
"""One tick in five refreshes the token (every 10 s at the 2 s tick). A fixed cadence with a
random phase per user, rather than a random pick per tick, so that every run of 10 s or
more contains `refresh` (a 1-in-5 random pick missed it in about 2% of 10 s runs)."""


class IdleUser(WebSocketUser):
    weight = 2
    flow = "idle"
    wait_time = constant(2)

    def on_start(self) -> None:
        self.ticks = self.rng.randrange(REFRESH_EVERY)

    @task
    @reported
    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % REFRESH_EVERY:
            self.hold()
        else:
            self.refresh()

    def hold(self) -> None:
        client = self.client
        if client is not None and client.state is not State.OPEN:
            closed = client.wait_closed(0)
            self.report("idle", 0.0, ConnectionClosed(closed.code, f"idle connection ended: {closed.reason}"))
        self.connection()

    def refresh(self) -> None:
        """Token refresh on the live connection (what long-lived sessions do)."""
        self.connection().refresh(self.token())
