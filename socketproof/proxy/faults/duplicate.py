"""`duplicate=P`: the message is forwarded twice in a row."""

from __future__ import annotations

from socketproof.proxy.faults.base import ChanceFault, Scheduled
from socketproof.proxy.faults.registry import register


@register
class Duplicate(ChanceFault):
    """The message is forwarded twice in a row."""

    name = "duplicate"
    usage = "duplicate=P"
    order = 30

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for item in batch:
            out.append(item)
            if self.chance():
                self.did(direction)
                out.append(item)
        return out
