"""State sync: tabs of one identity update a shared document; conflicts resync."""

from locust import task

from client.adapter import VERSIONED_STATE
from socketproof import WebSocketUser, reported


class StateSyncUser(WebSocketUser):
    weight = 1
    flow = "state"
    needs = frozenset({VERSIONED_STATE})
    uses = frozenset({"subscribe"})  # updates the state document, publishes nothing

    @task(4)
    @reported
    def update(self) -> None:
        tab = self.rng.choice(self.tabs(max(2, self.options.tabs)))
        facts = self.facts[tab.label]
        key = f"k{self.rng.randrange(8)}"
        reply = tab.update(facts.version, {key: self.rng.random()},  # type: ignore[attr-defined]
                           expected_errors=("version_conflict",))
        if reply["type"] == "error":
            facts.version = tab.sync()["version"]  # type: ignore[attr-defined]
        else:
            facts.version = reply["version"]

    @task(1)
    @reported
    def sync(self) -> None:
        tab = self.rng.choice(self.tabs(max(2, self.options.tabs)))
        self.facts[tab.label].version = tab.sync()["version"]  # type: ignore[attr-defined]
