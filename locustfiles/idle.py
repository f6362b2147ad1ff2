"""Idle: hold a connection open, answer the server's heartbeats, notice if it dies."""

from locust import constant, task

from client import ProtocolClient
from client.errors import ConnectionClosed
from client.transport import State
from socketproof import WebSocketUser, reported

REFRESH_EVERY = 5
"""One tick in five refreshes the token where the protocol can (socketproof: every 10 s at the
2 s tick). A fixed cadence with a random phase per user, so every run of 10 s or more has one."""


class IdleUser(WebSocketUser):
    weight = 2
    flow = "idle"
    uses = frozenset({"subscribe"})  # holds a connection, publishes nothing
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
        """Token refresh on the live connection (what long-lived sessions do), where the protocol has it."""
        client = self.connection()
        if isinstance(client, ProtocolClient):
            client.refresh(self.token())
