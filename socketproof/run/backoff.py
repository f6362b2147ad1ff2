"""The reconnect policy (--reconnect-backoff): how long a user waits before reconnecting.

Real clients do not reconnect at once: socket.io waits 1 s doubling up to 5 s, randomized by
0.5; Phoenix, Centrifugo and SignalR back off exponentially too, most with jitter. Without
jitter every client that lost its connection at the same moment comes back at the same
moment, again and again (a thundering herd); with full jitter the storm is spread. So the
storm a drill makes is the one the service's real clients would make only when the users
wait as they do. Pure: waits from the attempt number and a random generator, and one user's
`Reconnects` bookkeeping on a clock it is given.
"""

from __future__ import annotations

import random

from socketproof.run.options import ReconnectBackoff


def delay(policy: ReconnectBackoff, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0: the first after a connection was
    lost; n: after n failed attempts in a row): `first * 2**attempt` capped at `cap`, jittered."""
    if policy.first <= 0:
        return 0.0
    wait = min(policy.cap, policy.first * 2.0 ** min(max(attempt, 0), 64))
    if policy.jitter == "full":
        return rng.uniform(0.0, wait)
    if policy.jitter == "ratio":
        return min(policy.cap, wait * (1.0 + rng.uniform(-policy.ratio, policy.ratio)))
    return wait


class Reconnects:
    """One user's reconnect state: failed attempts in a row since a connection was last open,
    and the clock time before which it does not try again."""

    __slots__ = ("policy", "rng", "attempts", "ready_at")

    def __init__(self, policy: ReconnectBackoff, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.attempts = 0
        self.ready_at = 0.0

    def lost(self, now: float) -> None:
        """A connection that was open is gone: the next attempt waits the policy's first delay."""
        self.ready_at = now + delay(self.policy, self.attempts, self.rng)

    def failed(self, now: float) -> None:
        """A connect attempt failed: the next one waits longer."""
        self.attempts += 1
        self.ready_at = now + delay(self.policy, self.attempts, self.rng)

    def opened(self) -> None:
        """A connection is open: the count starts again (as socket.io's and Phoenix's do)."""
        self.attempts = 0
        self.ready_at = 0.0

    def wait(self, now: float) -> float:
        """Seconds still to wait before the next attempt (0: go)."""
        return max(0.0, self.ready_at - now)
