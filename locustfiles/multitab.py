"""Multi-tab: one identity with several connections; every message reaches every tab."""

from locust import task

from client.adapter import SERVER_SEQ
from socketproof import WebSocketUser, reported


class MultiTabUser(WebSocketUser):
    weight = 1
    flow = "tabs"
    needs = frozenset({SERVER_SEQ})

    @task
    @reported
    def broadcast(self) -> None:
        tabs = self.tabs(self.options.tabs)
        self.publish(self.rng.choice(tabs), self.my_channel())
