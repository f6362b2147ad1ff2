"""Multi-tab: one identity with several connections; every message reaches every tab."""

from locust import task

from client.connection import State
from socketproof.users import WebSocketUser, reported


class MultiTabUser(WebSocketUser):
    weight = 1
    flow = "tabs"

    def tabs(self):
        """This identity's open tabs, (re)opened up to --tabs."""
        for tab in [c for c in self.clients if c.state is not State.OPEN]:
            self.close_client(tab)
        while len(self.clients) < self.options.tabs:
            self.open_client()
        return self.clients

    @task
    @reported
    def broadcast(self) -> None:
        tabs = self.tabs()
        self.send_message(self.rng.choice(tabs), self.identity)
