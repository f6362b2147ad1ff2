"""`reorder=P`: two messages swap places."""

from __future__ import annotations

from typing import Any

from socketproof.proxy.faults.base import ChanceFault, Scheduled
from socketproof.proxy.faults.registry import register

HOLD_MAX = 1.0
"""Seconds a reordered message waits for a next one before it is released anyway (then only late)."""


@register
class Reorder(ChanceFault):
    """Hold one message and release it right after the next one (two messages swap places).

    A held message with no successor within HOLD_MAX seconds is released late, not reordered
    (and not counted), so a quiet connection loses nothing.
    """

    name = "reorder"
    usage = "reorder=P"
    order = 40
    paced = True

    def __init__(self, *args: Any, hold_max: float = HOLD_MAX, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold_max = hold_max
        self.held: dict[str, tuple[Scheduled, float]] = {}

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out: list[Scheduled] = []
        for item in batch:
            held = self.held.pop(direction, None)
            if held is not None:
                out.append(item)
                out.append(held[0])
                self.did(direction)
            elif self.chance():
                self.held[direction] = (item, now)
            else:
                out.append(item)
        return out

    def release(self, direction: str, now: float) -> list[Scheduled]:
        held = self.held.get(direction)
        if held is None or now - held[1] < self.hold_max:
            return []
        del self.held[direction]
        return [held[0]]

    def flush(self, direction: str) -> list[Scheduled]:
        held = self.held.pop(direction, None)
        return [held[0]] if held is not None else []
