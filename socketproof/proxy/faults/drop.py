"""`drop=P`: the message is not forwarded."""

from __future__ import annotations

from socketproof.proxy.faults.base import ChanceFault, Scheduled
from socketproof.proxy.faults.registry import register


@register
class Drop(ChanceFault):
    """The message is not forwarded."""

    name = "drop"
    usage = "drop=P (probability 0..1)"
    order = 10

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        kept = []
        for item in batch:
            if self.chance():
                self.did(direction)
            else:
                kept.append(item)
        return kept
