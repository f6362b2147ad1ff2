"""Pure checkers over a run history (history.History): check(history, **opts) -> Verdict.

Every module of this package is imported here, and each check module registers itself
(checks.registry), so a new check is one new file. `ALL_CHECKS` holds the history checks by
name, in their order; `run_checks` runs some or all of them. Timing thresholds judge
Locust's request stats, not the history: `check_timing`.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable

from checks.registry import CHECKS, history_checks
from checks.timing import Threshold, check_timing, parse_threshold
from checks.verdict import UNKNOWN, Anomaly, Verdict, compose
from history import History

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

ALL_CHECKS: dict[str, Callable[..., Verdict]] = {name: c.check for name, c in history_checks().items()}


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
    "ALL_CHECKS", "CHECKS", "UNKNOWN", "Anomaly", "Threshold", "Verdict", "check_timing", "compose",
    "parse_threshold", "run_checks",
]
