"""Chat: echo for latency, send to self and to live peers, receive pushes (`deliver`)."""

from locust import task

from socketproof.users import WebSocketUser, reported


class ChatUser(WebSocketUser):
    weight = 5
    flow = "chat"

    @task(5)
    @reported
    def echo(self) -> None:
        self.connection().echo(self.payload())

    @task(1)
    @reported
    def ping(self) -> None:
        self.connection().ping()

    @task(3)
    @reported
    def send(self) -> None:
        client = self.connection()
        to = self.identity if self.rng.random() < 0.5 else self.shared.live.pick(self.rng, self.identity)
        self.send_message(client, to)
