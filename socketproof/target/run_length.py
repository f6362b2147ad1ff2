"""Is the run long enough for every check? Said once at the start, from the pre-flight welcome.

A check that needs more time than the run has ends `UNKNOWN`; a user who asked for a 20 s
run against a 20 s heartbeat should learn why before the run, not after it.
"""

from __future__ import annotations

from typing import Any

HEARTBEAT_INTERVALS = 2
"""checks/heartbeat.py judges a connection that lived more than two advertised intervals."""


def warning(welcome: dict[str, Any], run_time: float | None) -> str | None:
    """What the run is too short for, in one line, or None (also when the run has no end)."""
    if not run_time or run_time <= 0:
        return None
    heartbeat = welcome.get("heartbeat")
    interval = heartbeat.get("interval") if isinstance(heartbeat, dict) else None
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        return None
    needed = HEARTBEAT_INTERVALS * interval
    if run_time > needed:
        return None
    return f"heartbeat needs a run of at least {needed:g} s to give a verdict; this run is {run_time:g} s"
