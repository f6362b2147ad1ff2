"""`throttle=BYTES_PER_S`: at most that many payload bytes per second per direction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socketproof.proxy.faults.base import Pacer, Part
from socketproof.proxy.faults.registry import register


@register
class Throttle(Pacer):
    """At most BYTES_PER_S payload bytes per second per direction (a frame waits for its turn)."""

    name = "throttle"
    usage = "throttle=BYTES_PER_S"
    order = 140

    def __init__(self, *args: Any, rate: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate = rate
        self.free_at: dict[str, float] = {}

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        rate = part.amount(part.required())
        if not rate:
            raise part.bad("the rate must be above 0 bytes/s")
        return {"rate": rate}

    @classmethod
    def describe_value(cls, params: Mapping[str, Any]) -> str:
        return f"{params['rate']:g}"

    def due(self, direction: str, nbytes: int, now: float) -> float:
        """When a frame of `nbytes` may be sent; counts the frames it held back."""
        if not self.applies(direction):
            return now
        start = max(now, self.free_at.get(direction, 0.0))
        if start > now:
            self.did(direction)
        self.free_at[direction] = start + nbytes / self.rate
        return start
