"""Where each --disrupt goes on the capacity plot, whose x axis is users, not time.

A disruption is placed at the step that was running when it started (a step runs from its
ramp's start to its measured window's end, wall clock, as `StepResult` records it), so the
plot shows which step's figures it may have moved. One that started before the first step
or after the last is put at that edge, one that never ran is listed without a place: none
is dropped. Pure: step dicts (capacity.json's `steps`) and disruption records
(socketproof.run.disruptions.Schedule.records) in, marker dicts (capacity.json's
`disruptions`) out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RECORD_KEYS = ("spec", "at", "action", "started_at", "ended_at", "result", "detail")


def label(disruption: Mapping[str, Any]) -> str:
    """`restart @ 15s`: the action and the AT of its own --disrupt spec."""
    at = str(disruption.get("spec") or "").partition(":")[0].strip() or f"{disruption.get('at')}s"
    return f"{disruption.get('action') or 'disruption'} @ {at}"


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def place_one(steps: Sequence[Mapping[str, Any]], disruption: Mapping[str, Any]) -> dict[str, Any]:
    """One disruption's marker: its record, `label`, `step` and `users` (the x to draw it at, None
    when it never ran or no step has times) and `where`, in words."""
    marker = {key: disruption.get(key) for key in RECORD_KEYS}
    marker.update(label=label(disruption), step=None, users=None)
    start = _time(disruption.get("started_at"))
    timed = [s for s in steps if _time(s.get("started_at")) is not None and _time(s.get("ended_at")) is not None]
    if start is None:
        marker["where"] = f"not run ({disruption.get('result') or 'pending'})"
        return marker
    if not timed:
        marker["where"] = "no step time recorded"
        return marker
    first, last = timed[0], timed[-1]
    if start < float(first["started_at"]):
        chosen, where = first, "before the first step"
    elif start > float(last["ended_at"]):
        chosen, where = last, "after the last step"
    else:
        chosen = next(s for s in timed if start <= float(s["ended_at"]))  # steps follow each other
        measured = _time(chosen.get("measure_started_at"))
        window = measured is not None and start >= measured
        where = f"step {chosen['step']}, " + ("measured window" if window else "ramp and settle")
    marker.update(step=chosen.get("step"), users=chosen.get("target_users"), where=where)
    return marker


def place(steps: Sequence[Mapping[str, Any]], disruptions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every disruption's marker, in the order given."""
    return [place_one(steps, d) for d in disruptions]
