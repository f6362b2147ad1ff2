"""The checks there are: every check module of checks/ registers itself here.

A check is one module that ends with `register(Check(...))`; checks/__init__.py imports every
module of the package, so adding a check is one new file (and its tests). Read from here:
`checks.ALL_CHECKS` and `run_checks` (the history checks), checks.fold (what each check keeps
of a folded connection), and socketproof's `--checks` (the names and their help).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from checks.verdict import Anomaly, Verdict
from history import ConnectionHistory, Folded, History


@dataclass(frozen=True)
class Check:
    """One check.

    `check` judges: `check(history, **opts) -> Verdict` for a history check, or, for
    `judges="requests"` (timing), Locust's request stats. `help` is its line in `--checks`
    help. `order` places it in `--checks`, the reports and the verdict table (lower first).
    For folded connections (checks.fold): `connection_anomalies(connection)` gives the
    anomalies one connection proves on its own, kept as evidence samples per kind
    (`History.folded.findings`); `fold(folded, connection)` writes anything else the check
    needs of it into the summary. `applies(history)`, when given, says whether the run is
    one this check judges at all (agreement: only runs with unstamped traffic, or nobody
    publishing); a run it does not apply to gets no row, as timing without thresholds.
    """

    name: str
    check: Callable[..., Verdict]
    help: str
    order: int
    judges: Literal["history", "requests"] = "history"
    connection_anomalies: Callable[[ConnectionHistory], list[Anomaly]] | None = None
    fold: Callable[[Folded, ConnectionHistory], None] | None = None
    applies: Callable[[History], bool] | None = None


CHECKS: dict[str, Check] = {}
"""Every registered check by name, in `order`."""


def register(check: Check) -> Check:
    """Add a check (a module imported twice registers again: the later one stays)."""
    known = CHECKS.get(check.name)
    if known is not None and known.check.__module__ != check.check.__module__:
        raise ValueError(f"check {check.name!r} registered by both {known.check.__module__} "
                         f"and {check.check.__module__}")
    CHECKS[check.name] = check
    ordered = sorted(CHECKS.values(), key=lambda c: (c.order, c.name))
    CHECKS.clear()
    CHECKS.update((c.name, c) for c in ordered)
    return check


def history_checks() -> dict[str, Check]:
    """The checks that judge a history (all but those over Locust's request stats)."""
    return {name: c for name, c in CHECKS.items() if c.judges == "history"}
