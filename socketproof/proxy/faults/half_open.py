"""`half_open`, `half_open=N` (data frames) or `half_open=Ns` (seconds): forwarding stops."""

from __future__ import annotations

from typing import Any

from socketproof.proxy.faults.base import Part, Trigger
from socketproof.proxy.faults.registry import register


@register
class HalfOpen(Trigger):
    """Forwarding stops in its directions and nothing is closed: a dead but open connection."""

    name = "half_open"
    usage = "half_open, half_open=N (data frames) or half_open=Ns (seconds)"
    order = 120
    halts = True

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        return {"seconds": 0.0} if part.value is None else super().parse_value(part)
