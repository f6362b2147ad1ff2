"""State sync: tabs of one identity update a shared document; conflicts resync."""

from locust import task

from socketproof.users import WebSocketUser, reported


class StateSyncUser(WebSocketUser):
    weight = 1
    flow = "state"

    @task(4)
    @reported
    def update(self) -> None:
        tab = self.rng.choice(self.tabs(max(2, self.options.tabs)))
        key = f"k{self.rng.randrange(8)}"
        reply = tab.request(
            {"type": "update", "base_version": self.versions[tab.label], "patch": {key: self.rng.random()}},
            expected_errors=("version_conflict",),
        )
        if reply["type"] == "error":
            self.versions[tab.label] = tab.sync()["version"]
        else:
            self.versions[tab.label] = reply["version"]

    @task(1)
    @reported
    def sync(self) -> None:
        tab = self.rng.choice(self.tabs(max(2, self.options.tabs)))
        self.versions[tab.label] = tab.sync()["version"]
