"""Offline: go away for a while as a peer keeps publishing to us, then resume.

The only flow whose resume replay holds many messages, so the replay is judged (ordering,
duplicates, loss) like live traffic. Refused publishes (`queue_full`) and expiry announced
as a gap are documented outcomes of the protocol, never failures.
"""

import time

from locust import task

from client import Client
from client.adapter import RESUME
from client.transport import State
from socketproof import WebSocketUser, reported

AWAY_SECONDS = (0.5, 2.0)
"""How long the user stays away: short, so an 8 s run resumes a few times."""
SEND_GAP = (0.05, 0.2)
"""Pause between the peer's publishes while the user is away."""
MAX_AWAY_SENDS = 20
"""Publishes per absence, whatever the timing: a replay holds at most this many messages."""
EXPECTED = ("queue_full",)
"""A full queue refuses the sender (docs/protocol.md section 6): a correct answer, not a failure."""


class OfflineUser(WebSocketUser):
    weight = 2
    flow = "offline"
    needs = frozenset({RESUME})

    def on_start(self) -> None:
        self.peer_identity = self.shared.identity("offline-peer")
        self.peer: Client | None = None

    @task
    @reported
    def away_and_back(self) -> None:
        client = self.connection()
        resume = self.last_seq(client) or 0
        self.close_client(client, abrupt=self.rng.random() < 0.5)
        self.client = None
        self.send_while_away(self.rng.uniform(*AWAY_SECONDS))
        with self.environment.events.request.measure("WS", "resume"):
            # Resumed, or a gap announced (messages expired): both are documented outcomes.
            self.client = self.open_client(resume_after=resume)

    def send_while_away(self, seconds: float) -> None:
        """A peer publishes to this user's identity until it comes back (bounded in time and count)."""
        peer = self.peer
        if peer is None or peer.state is not State.OPEN:
            if peer is not None:
                self.close_client(peer)
            self.peer = peer = self.open_client(self.peer_identity)
        until = time.monotonic() + seconds
        for _ in range(MAX_AWAY_SENDS):
            if self.shared.stopping:
                return
            self.publish(peer, self.my_channel(), expected_errors=EXPECTED)
            pause = self.rng.uniform(*SEND_GAP)
            if time.monotonic() + pause >= until:
                break
            time.sleep(pause)
        time.sleep(max(0.0, until - time.monotonic()))
