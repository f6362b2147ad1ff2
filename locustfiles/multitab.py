"""Multi-tab: one identity with several connections; every message reaches every tab."""

from locust import task

from socketproof.users import WebSocketUser, reported


class MultiTabUser(WebSocketUser):
    weight = 1
    flow = "tabs"

    @task
    @reported
    def broadcast(self) -> None:
        tabs = self.tabs(self.options.tabs)
        self.send_message(self.rng.choice(tabs), self.identity)
