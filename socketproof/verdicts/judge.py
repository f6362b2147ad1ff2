"""Turns a run's history and Locust's stats into verdicts, a table and an exit code.

No Locust objects here beyond reading a `RequestStats`: the event wiring lives in
socketproof.run.plugin, the files in socketproof.verdicts.reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from checks import ALL_CHECKS, CHECKS, UNKNOWN, Verdict, check_timing, compose, parse_threshold, run_checks
from history import History

CHECK_NAMES = tuple(CHECKS)
"""What --checks can name: every registered check, in its order."""
PERCENTILES = (50, 90, 95, 99, 99.9)


def parse_check_names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """`--checks ordering,loss` -> names; "all" (default) -> every check. ValueError names the bad one."""
    if text is None:
        return CHECK_NAMES
    parts = text.split(",") if isinstance(text, str) else [p for item in text for p in str(item).split(",")]
    names = tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if not names or names == ("all",):
        return CHECK_NAMES
    bad = [name for name in names if name not in CHECK_NAMES]
    if bad:
        raise ValueError(f"unknown check {bad[0]!r} in --checks; known: all, {', '.join(CHECK_NAMES)}")
    return names


def validate_thresholds(expressions: Iterable[str]) -> list[str]:
    """Parse each --threshold now so a typo stops the run before it starts."""
    expressions = list(expressions or [])
    for expression in expressions:
        try:
            parse_threshold(expression)
        except ValueError as error:  # name the option: the user may have passed several
            raise ValueError(f"--threshold: {error}") from None
    return expressions


def stats_table(request_stats: Any) -> dict[str, dict[str, Any]]:
    """Locust's RequestStats as the plain dict check_timing reads."""

    def entry(stats_entry: Any) -> dict[str, Any]:
        count = stats_entry.num_requests
        return {
            "num_requests": count,
            "num_failures": stats_entry.num_failures,
            "percentiles": {
                p: stats_entry.get_response_time_percentile(p / 100.0) if count else None for p in PERCENTILES
            },
            "avg": stats_entry.avg_response_time if count else None,
            "min": stats_entry.min_response_time if count else None,
            "max": stats_entry.max_response_time if count else None,
            "rps": stats_entry.total_rps,
        }

    table = {stats_entry.name: entry(stats_entry) for stats_entry in request_stats.entries.values()}
    table["Aggregated"] = entry(request_stats.total)
    return table


@dataclasses.dataclass
class Judgement:
    """The verdicts of one run and what they mean for the exit code."""

    verdicts: list[Verdict]
    overall: Verdict
    strict: bool
    no_evidence: bool = False
    """Not one request succeeded (e.g. a target that accepts TCP and never answers): a failure
    whatever --strict says, since every verdict is then UNKNOWN for want of evidence."""

    @property
    def failed(self) -> bool:
        return self.no_evidence or self.overall.valid is False or (self.strict and self.overall.valid == UNKNOWN)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.overall.valid,
            "strict": self.strict,
            "exit_code": self.exit_code,
            "no_evidence": self.no_evidence,
            "verdicts": [verdict.to_dict() for verdict in self.verdicts],
        }


def no_successful_request(request_stats: dict[str, dict[str, Any]] | None) -> bool:
    """True when Locust's stats (stats_table) hold requests, none of them a success, or none at all;
    False when there are no stats to tell (None)."""
    total = (request_stats or {}).get("Aggregated")
    if total is None:
        return False
    return int(total.get("num_requests") or 0) - int(total.get("num_failures") or 0) <= 0


def judge(
    history: History,
    names: Sequence[str] = CHECK_NAMES,
    thresholds: Sequence[str] = (),
    request_stats: dict[str, dict[str, Any]] | None = None,
    strict: bool = False,
    heartbeat_interval: float | None = None,
    missing_workers: Sequence[str] = (),
) -> Judgement:
    """Run the chosen checks; timing only when thresholds were given. `heartbeat_interval` is
    --heartbeat-interval: the ping interval to expect where the protocol announces none.
    `missing_workers` (distributed runs) name the workers whose history never came: a check
    left without evidence by them says so instead of "the run was cut short"."""
    history_checks = [name for name in names if name in ALL_CHECKS
                      and (CHECKS[name].applies is None or CHECKS[name].applies(history))]
    opts: dict[str, Any] = {"expected_interval": heartbeat_interval} \
        if heartbeat_interval and "heartbeat" in history_checks else {}
    parsed = [parse_threshold(expression) for expression in thresholds]
    if "recovery" in history_checks:  # the recovery family is judged over the history (checks.recovery)
        opts["thresholds"] = [t for t in parsed if t.family == "recovery"]
    verdicts = run_checks(history, history_checks, **opts)
    if missing_workers:
        verdicts = [_blame_missing(verdict, missing_workers) for verdict in verdicts]
    request_thresholds = [t for t in parsed if t.family != "recovery"]
    if "timing" in names and request_thresholds:
        verdicts.append(check_timing(request_stats or {}, request_thresholds))
    return Judgement(verdicts, compose(verdicts), strict, no_successful_request(request_stats))


def _blame_missing(verdict: Verdict, workers: Sequence[str]) -> Verdict:
    """A verdict that is not a proven FAIL, on a run with workers' histories missing: UNKNOWN,
    naming them (no check passes on part of the evidence)."""
    if verdict.valid is False:
        return verdict
    reason = (f"no history from worker {', '.join(workers)} (killed or cut off during the run): "
              "the evidence is only part of the run")
    return dataclasses.replace(verdict, valid=UNKNOWN, stats={**verdict.stats, "reason": reason})


def _mark(valid: Any) -> str:
    return {True: "PASS", False: "FAIL"}.get(valid, "UNKNOWN")  # type: ignore[arg-type]


def _first_evidence(verdict: Verdict) -> str:
    if verdict.anomalies:
        anomaly = verdict.anomalies[0]
        return f"{anomaly.kind}: {anomaly.message}"
    reason = verdict.stats.get("reason") or verdict.stats.get("unknown_reason") or verdict.stats.get("summary")
    return str(reason) if reason else ""


def rows(judgement: Judgement) -> list[dict[str, Any]]:
    """One row per check, for the console, the web UI tab and the HTML report."""
    return [
        {
            "check": verdict.name,
            "verdict": _mark(verdict.valid),
            "anomalies": verdict.stats.get("anomalies", len(verdict.anomalies)),
            "evidence": _first_evidence(verdict),
        }
        for verdict in judgement.verdicts
    ]


def format_table(judgement: Judgement, width: int = 110) -> str:
    """The console verdict table."""
    lines = [f"{'Check':<12} {'Verdict':<8} {'Anomalies':>9}  First evidence", "-" * width]
    for row in rows(judgement):
        evidence = row["evidence"]
        room = width - 33
        if len(evidence) > room:
            evidence = evidence[: room - 3] + "..."
        lines.append(f"{row['check']:<12} {row['verdict']:<8} {row['anomalies']:>9}  {evidence}")
    lines.append("-" * width)
    lines.append(f"{'Overall':<12} {_mark(judgement.overall.valid):<8}")
    return "\n".join(lines)
