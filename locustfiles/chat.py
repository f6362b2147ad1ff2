"""Chat: round trips for latency, stamped messages to our own channel and to live peers'."""

from locust import task

from client.adapter import ROUND_TRIP
from socketproof import WebSocketUser, reported


class ChatUser(WebSocketUser):
    weight = 5
    flow = "chat"
    uses = frozenset({"echo", "subscribe", "publish"})

    @task(5)
    @reported
    def echo(self) -> None:
        if self.has(ROUND_TRIP):
            self.connection().request("echo", self.payload())
        else:
            self.send()

    @task(1)
    @reported
    def ping(self) -> None:
        if self.adapter.name == "socketproof":  # the protocol's own ping (section 3)
            self.connection().request("ping", {})

    @task(3)
    @reported
    def send(self) -> None:
        client = self.connection()
        channel = self.my_channel() if self.rng.random() < 0.5 else self.peer_channel()
        self.publish(client, channel)

    def payload(self) -> str:
        return "x" * self.options.message_bytes
