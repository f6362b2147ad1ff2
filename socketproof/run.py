"""What one Locust process shares between its users during a run.

One `RunState` per process: the validated options, the history recorder, the pool of
identities, which identities are live here (so chat users send to peers that can
receive), and the delivery tracker that turns a send and its receipt into `deliver`.
"""

from __future__ import annotations

import collections
import itertools
import random
import time
from typing import Any

from client.recorder import Recorder
from socketproof.options import LoadOptions

DELIVERY_CAP = 100_000
"""Sends waiting for their receipt; the oldest are forgotten first (bounded memory)."""


class DeliveryTracker:
    """Matches a message id sent here with its first receipt here: the `deliver` time."""

    def __init__(self, cap: int = DELIVERY_CAP) -> None:
        self.cap = cap
        self._sent: dict[str, float] = {}

    def sent(self, message_id: str) -> None:
        sent = self._sent
        sent[message_id] = time.perf_counter()
        if len(sent) > self.cap:
            del sent[next(iter(sent))]

    def received(self, message_id: Any) -> float | None:
        """Milliseconds since the send, the first time this id is received here; else None."""
        started = self._sent.pop(message_id, None)
        if started is None:
            return None
        return (time.perf_counter() - started) * 1000.0


class LiveIdentities:
    """Identities with an open connection in this process, to pick message peers from."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._names: list[str] = []

    def add(self, identity: str) -> None:
        self._counts[identity] += 1
        if self._counts[identity] == 1:
            self._names.append(identity)

    def remove(self, identity: str) -> None:
        if self._counts[identity] <= 0:
            return
        self._counts[identity] -= 1
        if self._counts[identity] == 0:
            del self._counts[identity]
            self._names.remove(identity)

    def pick(self, rng: random.Random, default: str) -> str:
        return rng.choice(self._names) if self._names else default


class RunState:
    """Per-process state of a Socketproof run."""

    def __init__(self, options: LoadOptions, process_id: str) -> None:
        self.options = options
        self.process_id = process_id
        self.recorder = Recorder(process_id)
        self.deliveries = DeliveryTracker()
        self.live = LiveIdentities()
        self.stopping = False
        """Set at the end of a run: users stop sending so in-flight messages can land."""
        self._numbers: dict[str, itertools.count[int]] = collections.defaultdict(itertools.count)
        self._labels = itertools.count(1)

    def identity(self, flow: str) -> str:
        """The next identity of a flow's pool: `<flow>-<process>-<n mod identities>`."""
        n = next(self._numbers[flow]) % self.options.identities
        return f"{flow}-{self.process_id}-{n}"

    def label(self, identity: str) -> str:
        """A connection label unique in the run (it prefixes message ids: `<label>:<n>`)."""
        return f"{identity}#{next(self._labels)}"
