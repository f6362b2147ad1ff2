"""`delay_ms=MS` or `delay_ms=MS+JITTER_MS`: messages wait, in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socketproof.proxy.faults.base import MessageFault, Part, Scheduled
from socketproof.proxy.faults.registry import register


@register
class Delay(MessageFault):
    """Every chosen message waits MS (+- a uniform JITTER_MS) before it is sent, in order."""

    name = "delay_ms"
    usage = "delay_ms=MS or delay_ms=MS+JITTER_MS"
    order = 50
    paced = True

    def __init__(self, *args: Any, ms: float = 0.0, jitter_ms: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ms = ms
        self.jitter_ms = jitter_ms
        self.last_due: dict[str, float] = {}

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        value, plus, extra = part.required().partition("+")
        return {"ms": part.amount(value), "jitter_ms": part.amount(extra) if plus else 0.0}

    @classmethod
    def describe_value(cls, params: Mapping[str, Any]) -> str:
        return f"{params['ms']:g}" + (f"+{params['jitter_ms']:g}" if params.get("jitter_ms") else "")

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for message, due in batch:
            if self.chance():
                self.did(direction)
                extra = self.ms + (self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
                due = max(due, now + max(0.0, extra) / 1000.0)
            due = max(due, self.last_due.get(direction, 0.0))  # never overtake an earlier message
            self.last_due[direction] = due
            out.append((message, due))
        return out
