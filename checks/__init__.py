"""Pure checkers over a run history (checks.history): check_<name>(history, **opts) -> Verdict.

`ALL_CHECKS` holds the history checks; `run_checks` runs some or all of them.
Timing thresholds judge locust's request stats, not the history: `check_timing`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from checks.cleanup import check_cleanup
from checks.duplicates import check_duplicates
from checks.heartbeat import check_heartbeat
from checks.history import HISTORY_VERSION, ChannelRecord, ConnectionHistory, History, PublishRecord, Samples, SeqSet
from checks.loss import check_loss
from checks.ordering import check_ordering
from checks.state import check_state
from checks.timing import Threshold, check_timing, parse_threshold
from checks.verdict import UNKNOWN, Anomaly, Verdict, compose

ALL_CHECKS: dict[str, Callable[..., Verdict]] = {
    "ordering": check_ordering,
    "duplicates": check_duplicates,
    "loss": check_loss,
    "cleanup": check_cleanup,
    "heartbeat": check_heartbeat,
    "state": check_state,
}


def run_checks(history: History, names: Iterable[str] | None = None, **opts) -> list[Verdict]:
    """Run the named checks (all by default); each gets only the opts it accepts."""
    names = list(ALL_CHECKS) if names is None else list(names)
    unknown = [n for n in names if n not in ALL_CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {sorted(ALL_CHECKS)}")
    accepted = {n: set(inspect.signature(ALL_CHECKS[n]).parameters) - {"history"} for n in names}
    unused = set(opts) - set().union(*accepted.values())
    if unused:
        raise TypeError(f"option(s) {sorted(unused)} not accepted by checks {names}")
    return [ALL_CHECKS[n](history, **{k: v for k, v in opts.items() if k in accepted[n]})
            for n in names]


__all__ = [
    "ALL_CHECKS", "HISTORY_VERSION", "UNKNOWN", "Anomaly", "ChannelRecord", "ConnectionHistory", "History",
    "PublishRecord", "Samples", "SeqSet", "Threshold", "Verdict", "check_cleanup", "check_duplicates",
    "check_heartbeat", "check_loss", "check_ordering", "check_state", "check_timing",
    "compose", "parse_threshold", "run_checks",
]
