"""The numbers in switch and fault-spec text (`drop=0.2`, `delay_ms=50`, `cut_after=10`, `half_open=5s`).

Each function takes the text of the value, the part it came from (named in the error) and a
usage line (after the error, when the text is no number at all); it returns the value or
raises ValueError with one line. Used by the reference server's switches (server/faults.py)
and the fault proxy's spec (socketproof/proxy/faults/).
"""

from __future__ import annotations

import math


def _error(kind: str, raw: str, part: str, usage: str) -> ValueError:
    return ValueError(f"bad {kind} {raw!r} in {part!r}" + (f": {usage}" if usage else ""))


def probability(raw: str, part: str, usage: str = "") -> float:
    """A probability, 0..1."""
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        raise _error("probability", raw, part, usage) from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability in {part!r} must be between 0 and 1, got {raw}")
    return value


def amount(raw: str, part: str, usage: str = "") -> float:
    """A finite number, 0 or more (milliseconds, bytes per second, ...)."""
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        raise _error("number", raw, part, usage) from None
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"number in {part!r} must be 0 or more, got {raw}")
    return value


def count(raw: str, part: str, usage: str = "") -> int:
    """A whole number, 1 or more."""
    raw = raw.strip()
    try:
        value = int(raw)
    except ValueError:
        raise _error("count", raw, part, usage) from None
    if value < 1:
        raise ValueError(f"count in {part!r} must be at least 1, got {raw}")
    return value


def is_duration(raw: str) -> bool:
    """Whether the text is meant as seconds (`5s`, `2.5s`) rather than a count."""
    return raw.strip().endswith("s")


def duration(raw: str, part: str, usage: str = "") -> float:
    """Seconds written `Ns` (`5s`, `2.5s`, `0s`): an amount with an `s` after it."""
    raw = raw.strip()
    if not raw.endswith("s"):
        raise _error("duration", raw, part, usage)
    return amount(raw[:-1], part, usage)
