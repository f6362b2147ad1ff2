"""Fault switches: each makes the reference server wrong in exactly one way.

They exist so that every test and every check can be shown to catch the bug it is for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from common import values

_PROBABILITIES = ("drop", "duplicate", "reorder")
_FLAGS = (
    "leak_connections",
    "skip_heartbeat",
    "accept_expired_tokens",
    "accept_any_signature",
    "no_queue_expiry",
    "queue_unbounded",
    "stale_snapshot",
    "replay_reorder",
    "replay_drop",
    "replay_duplicate",
)
KNOWN_FAULTS = (*_PROBABILITIES, "delay_ms", "crash_on", "refuse_after_start", *_FLAGS)


@dataclasses.dataclass(frozen=True)
class Faults:
    """The switches that are on; all off by default."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ms: float = 0.0
    crash_on: str | None = None
    refuse_after_start: float = 0.0
    """Seconds after the server starts during which every WebSocket upgrade answers 503 (a slow
    restart: a deploy's recovery made slow on purpose)."""
    leak_connections: bool = False
    skip_heartbeat: bool = False
    accept_expired_tokens: bool = False
    accept_any_signature: bool = False
    no_queue_expiry: bool = False
    queue_unbounded: bool = False
    stale_snapshot: bool = False
    replay_reorder: bool = False
    """The first two messages of every resume replay swap places (live traffic untouched)."""
    replay_drop: bool = False
    """The first message of every resume replay is skipped (the welcome counts what is sent)."""
    replay_duplicate: bool = False
    """The first message of every resume replay is sent twice."""

    def active(self) -> dict[str, object]:
        """The switches that differ from the default, for logs and /stats."""
        default = Faults()
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(default, field.name)
        }

    def describe(self) -> str:
        return ",".join(
            name if value is True else f"{name}={value}" for name, value in self.active().items()
        )


def parse_faults(text: str) -> Faults:
    """Parse `drop=0.05,leak_connections,crash_on=echo,refuse_after_start=10s`; raise ValueError naming the bad part.

    Numbers are checked as in the fault proxy's spec (common/values.py), with the same messages.
    """
    switches: dict[str, object] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, has_value, raw = (item.strip() for item in part.partition("="))
        if name not in KNOWN_FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(KNOWN_FAULTS)}")
        if name in _PROBABILITIES:
            switches[name] = _number(values.probability, part, bool(has_value), raw, f"{name}=P (probability 0..1)")
        elif name == "delay_ms":
            switches[name] = _number(values.amount, part, bool(has_value), raw, "delay_ms=MS")
        elif name == "refuse_after_start":
            switches[name] = _number(values.duration, part, bool(has_value), raw, "refuse_after_start=Ns (seconds)")
        elif name == "crash_on":
            if not raw:
                raise ValueError("fault 'crash_on' needs a message type, e.g. crash_on=echo")
            switches[name] = raw
        else:
            if has_value and raw.lower() not in ("1", "true", "on", "yes"):
                raise ValueError(f"fault {name!r} is a switch and takes no value, got {raw!r}")
            switches[name] = True
    return Faults(**switches)  # type: ignore[arg-type]


def _number(check: Callable[[str, str, str], float], part: str, has_value: bool, raw: str, usage: str) -> float:
    """The value of `part` by `check` (common/values.py); `usage` is how to write it."""
    usage = f"{part.partition('=')[0].strip()} takes {usage}"
    if not has_value:
        raise ValueError(f"fault {part!r} needs a value: {usage}")
    return check(raw, part, usage)
