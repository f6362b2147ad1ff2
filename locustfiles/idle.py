"""Idle: hold a connection open, answer the server's heartbeat pings, notice if it dies."""

from locust import constant, task

from client.connection import State
from client.errors import ConnectionClosed
from socketproof.users import WebSocketUser, reported


class IdleUser(WebSocketUser):
    weight = 2
    flow = "idle"
    wait_time = constant(2)

    @task(4)
    @reported
    def hold(self) -> None:
        client = self.client
        if client is not None and client.state is not State.OPEN:
            closed = client.wait_closed(0)
            self.report("idle", 0.0, ConnectionClosed(closed.code, f"idle connection ended: {closed.reason}"))
        self.connection()

    @task(1)
    @reported
    def refresh(self) -> None:
        """Token refresh on the live connection (what long-lived sessions do)."""
        self.connection().refresh(self.token())
