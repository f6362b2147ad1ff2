"""The locustfile of tests/reliability/test_clock_offsets.py, for a run of exactly two workers.

Each user publishes half its messages to itself (delivered in its own process) and half to a
user of the other worker (delivered across processes). Socketproof's own `deliver` measurement
(socketproof.run.users.ConnectionFacts) times both; this flow only files each figure under the
delivery's kind, `deliver same` or `deliver across`, so the two stand side by side in Locust's
stats, and adds `deliver uncorrected`: a cross-process delivery's raw clock difference (its
absolute value), what `deliver across` would read without the offsets.
"""

from __future__ import annotations

from typing import Any

from locust import task

from client.adapter import Delivery
from socketproof import WebSocketUser, reported
from socketproof.run import clock

USERS_PER_PROCESS = 4
"""The test's --users 8 over two workers."""


class ClockFlow(WebSocketUser):
    flow = "clock"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.across = False
        """Whether the delivery being measured now came from another process."""

    def new_client(self, identity: str, label: str, resume_after: Any = None) -> Any:
        client = super().new_client(identity, label, resume_after)
        measure = client.on_delivery

        def on_delivery(delivery: Delivery) -> None:
            stamp = delivery.stamp
            self.across = stamp is not None and not self.shared.is_local(stamp.sender)
            if self.across and stamp is not None and not delivery.replay:
                super(ClockFlow, self).report("deliver uncorrected", abs(clock.now() - stamp.sent_at) * 1000.0)
            measure(delivery)

        client.on_delivery = on_delivery
        return client

    def report(self, name: str, elapsed_ms: float, exception: BaseException | None = None) -> None:
        if name == "deliver":
            name = "deliver across" if self.across else "deliver same"
        super().report(name, elapsed_ms, exception)

    @task
    @reported
    def send(self) -> None:
        client = self.connection()
        if self.rng.random() < 0.5:
            channel = self.my_channel()
        else:
            other = "w1" if self.shared.process_id == "w0" else "w0"
            channel = f"{self.flow}-{other}-{self.rng.randrange(USERS_PER_PROCESS)}"
        self.publish(client, channel)
