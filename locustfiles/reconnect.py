"""Reconnect: drop (abruptly or cleanly) at random points, resume with last_seq, verify replay."""

from locust import task

from client.errors import ProtocolError
from socketproof.users import WebSocketUser, reported


class ReconnectUser(WebSocketUser):
    weight = 2
    flow = "reconnect"

    @task
    @reported
    def send_and_maybe_drop(self) -> None:
        client = self.connection()
        self.send_message(client, self.identity)
        if self.rng.random() < self.options.reconnect_probability:
            self.reconnect(abrupt=self.rng.random() < 0.5)

    def reconnect(self, *, abrupt: bool) -> None:
        """`reconnect`: from the drop to the resumed session with its replay received."""
        client = self.client
        assert client is not None
        last_seq = self.last_seq.get(client.label, 0)
        with self.environment.events.request.measure("WS", "reconnect"):
            self.close_client(client, abrupt=abrupt)
            self.client = None
            self.client = fresh = self.open_client(last_seq=last_seq)
            welcome = fresh.welcome or {}
            if not welcome.get("resumed"):
                gap = welcome.get("gap")
                raise ProtocolError("not_resumed", f"resume after seq {last_seq} not honoured: gap {gap}", welcome)
