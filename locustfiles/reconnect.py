"""Reconnect: drop (abruptly or cleanly) at random points and come back; with a resuming
protocol, resume after the last seq seen and verify the server honoured it."""

from locust import task

from client.adapter import RESUME
from client.errors import ProtocolError
from socketproof import WebSocketUser, reported


class ReconnectUser(WebSocketUser):
    weight = 2
    flow = "reconnect"

    @task
    @reported
    def send_and_maybe_drop(self) -> None:
        client = self.connection()
        self.publish(client, self.my_channel())
        if self.rng.random() < self.options.reconnect_probability:
            self.reconnect(abrupt=self.rng.random() < 0.5)

    def reconnect(self, *, abrupt: bool) -> None:
        """`reconnect`: from the drop to the new session (with its replay, where the protocol resumes)."""
        client = self.client
        assert client is not None
        resume = (self.last_seq(client) or 0) if self.has(RESUME) else None
        with self.environment.events.request.measure("WS", "reconnect"):
            self.close_client(client, abrupt=abrupt)
            self.client = None
            self.client = fresh = self.open_client(resume_after=resume)
            info = fresh.ready.resume if fresh.ready is not None else None
            if resume is not None and info is not None and not info.resumed:
                raise ProtocolError("not_resumed", f"resume after seq {resume} not honoured: gap {info.gap}",
                                    fresh.ready.info if fresh.ready is not None else None)
