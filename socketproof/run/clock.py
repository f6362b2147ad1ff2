"""Clock offsets between Locust processes, NTP-style, and `deliver` latency corrected by them.

A stamp carries its sender's `time.time()`; a receiver in another process reads another clock,
so their difference is latency plus the two clocks' offset. The master measures each worker's
offset (socketproof.run.clock_sync) from round trips: the master sends its time, the worker
answers with its own, the master notes when the answer came. The round trip with the least
delay bounds the offset best: the worker read its clock somewhere inside it, so the offset
from its midpoint is wrong by at most half that round trip (the uncertainty). Pure: no Locust.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger("socketproof")

SKEW_ENV = "SOCKETPROOF_TEST_CLOCK_SKEW"
"""Test only: seconds this process's clock reads ahead, to prove offsets are measured and corrected."""


def _clock() -> Callable[[], float]:
    """`time.time`, or with $SOCKETPROOF_TEST_CLOCK_SKEW (tests only) a clock that many seconds
    ahead: the one skew hook, read once; unset, `now` is `time.time` itself."""
    value = os.environ.get(SKEW_ENV, "").strip()
    if not value:
        return time.time
    try:
        skew = float(value)
    except ValueError:
        log.warning("$%s=%r is not a number of seconds: ignored", SKEW_ENV, value)
        return time.time
    return lambda: time.time() + skew


now = _clock()
"""Seconds since the epoch on this process's clock: what stamps and receive times read."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One round trip: `sent` and `received` on the master's clock, `remote` the worker's clock
    read in between."""

    sent: float
    remote: float
    received: float

    @property
    def round_trip(self) -> float:
        return self.received - self.sent

    @property
    def offset(self) -> float:
        """The worker's clock minus the master's, if the worker read it at the round trip's midpoint."""
        return self.remote - (self.sent + self.received) / 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class Estimate:
    """A worker's clock offset (its clock minus the master's, in seconds), right within +/- `uncertainty`."""

    offset: float
    uncertainty: float
    samples: int


def estimate(samples: Iterable[Sample]) -> Estimate | None:
    """From the round trip with the least delay (None without any usable one): queueing only
    ever adds delay, and it need not be symmetric, so the shortest round trip bounds best."""
    usable = [sample for sample in samples if sample.round_trip >= 0.0]
    if not usable:
        return None
    best = min(usable, key=lambda sample: sample.round_trip)
    return Estimate(best.offset, best.round_trip / 2.0, len(usable))


def corrected(sent_at: float, sender_offset: float, received_at: float, receiver_offset: float) -> float:
    """Latency on the master's clock: both times brought to it before they are subtracted."""
    return (received_at - receiver_offset) - (sent_at - sender_offset)


def process_tag(sender: str) -> str:
    """The `@<process>.<run tag>` a stamp's sender (a connection label) ends with."""
    return sender[sender.rfind("@"):]


class Offsets:
    """What one process knows of every process's clock offset (by process tag), as the master
    last sent it; a delivery between two processes is measured only when both are known."""

    def __init__(self) -> None:
        self.by_tag: dict[str, float] = {}

    def update(self, table: Mapping[str, Any]) -> None:
        """Take the master's table, {tag: [offset, uncertainty]} (anything malformed is skipped)."""
        fresh: dict[str, float] = {}
        for tag, entry in table.items():
            if isinstance(tag, str) and isinstance(entry, (list, tuple)) and entry \
                    and isinstance(entry[0], (int, float)):
                fresh[tag] = float(entry[0])
        self.by_tag = fresh

    def latency(self, receiver_tag: str, sender: str, sent_at: float, received_at: float) -> float | None:
        """The corrected latency of a stamp from `sender` received here, None while either
        process's offset is unknown (never an uncorrected figure)."""
        by_tag = self.by_tag
        sender_offset = by_tag.get(process_tag(sender))
        receiver_offset = by_tag.get(receiver_tag)
        if sender_offset is None or receiver_offset is None:
            return None
        return corrected(sent_at, sender_offset, received_at, receiver_offset)
