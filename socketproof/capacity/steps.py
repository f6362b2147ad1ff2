"""Capacity check: raise the load in steps and find the last step that holds the SLO.

Pure logic only (no Locust runner, no files): the options, the step schedule and its
time bound, per-step stats from two snapshots of Locust's cumulative stats, the stop
rule, the result and the comparison with a stored baseline. `StepController` drives the
steps through a small `Probe`, so the whole state machine runs in plain unit tests;
socketproof.capacity.shape plugs it into Locust, socketproof.capacity.report writes it out.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from locust.stats import calculate_response_time_percentile, diff_response_time_dicts
from locust.util.timespan import parse_timespan

from checks import UNKNOWN, check_timing, parse_threshold
from socketproof.run.options import number_option
from socketproof.verdicts.judge import PERCENTILES

RESULT_VERSION = 1
DEFAULT_FAILURES = "failures<1%"
"""Added to the SLO unless a threshold already limits Aggregated failures: a step where
requests fail has not held, however fast the ones that succeed are."""
SPAWN_RATE_CAP = 50.0
"""Users started per second within a step: each opens a WebSocket, so not all at once."""
RAMP_GRACE = 10.0
"""Seconds a step may wait past its expected ramp for the runner to report its users."""
REPORTED_PERCENTILES = (50, 95, 99)

Snapshot = dict[str, tuple[int, int, float, dict[int, int], dict[int, int]]]
"""name -> (requests, failures, total response time ms, {rounded ms: count}, {unix second: count}),
cumulative."""


@dataclasses.dataclass(frozen=True)
class CapacityOptions:
    """What one capacity check does; validated by `parse_options`."""

    step_users: int = 10
    step_time: float = 20.0
    max_users: int = 200
    slo: tuple[str, ...] = (DEFAULT_FAILURES,)
    checks: tuple[str, ...] = ()
    report_dir: str = "reports"
    baseline: str | None = None
    tolerance: float = 0.10
    settle: float = 2.0
    lag: float = 0.0
    """Seconds the stats trail the load: a master hears from its workers every 3 s."""

    @property
    def max_steps(self) -> int:
        return math.ceil(self.max_users / self.step_users)

    @property
    def spawn_rate(self) -> float:
        return float(min(self.step_users, SPAWN_RATE_CAP))

    @property
    def ramp_limit(self) -> float:
        """Longest a step waits for its users before measuring anyway."""
        return self.step_users / self.spawn_rate + RAMP_GRACE


def parse_seconds(raw: Any, flag: str) -> float:
    """`20`, `2.5`, `20s`, `1m30s` -> seconds (ValueError naming the flag)."""
    text = str(raw).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(parse_timespan(text))
    except ValueError:
        raise ValueError(f"{flag} must be a time like 20, 20s or 1m, got {raw!r}") from None


def parse_tolerance(raw: Any) -> float:
    """`10%` or `10` (percent) -> 0.10."""
    text = str(raw).strip().rstrip("%").strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--capacity-tolerance must be a percentage like 10%, got {raw!r}") from None
    if not 0.0 <= value < 100.0:
        raise ValueError(f"--capacity-tolerance must be between 0% and 100%, got {raw!r}")
    return value / 100.0


def slo_of(thresholds: Iterable[str]) -> tuple[str, ...]:
    """The step SLO: the --threshold expressions, plus `failures<1%` unless one limits failures."""
    slo = tuple(thresholds)
    limits_failures = any(
        (t := parse_threshold(expr)).metric == "failures" and t.name == "Aggregated" for expr in slo
    )
    return slo if limits_failures else (*slo, DEFAULT_FAILURES)


def parse_options(parsed: Any, thresholds: Sequence[str], checks: Sequence[str], report_dir: str) -> CapacityOptions:
    """Locust's parsed options -> CapacityOptions; ValueError names the bad flag."""

    step_users = number_option(parsed, "step_users", int, 1)
    max_users = number_option(parsed, "max_users", int, 1)
    if max_users < step_users:
        raise ValueError(f"--max-users ({max_users}) must be at least --step-users ({step_users})")
    step_time = parse_seconds(getattr(parsed, "step_time", 20), "--step-time")
    if step_time < 1:
        raise ValueError(f"--step-time must be at least 1 second, got {step_time:g}")
    return CapacityOptions(
        step_users=step_users,
        step_time=step_time,
        max_users=max_users,
        slo=slo_of(thresholds),
        checks=tuple(name for name in checks if name != "timing"),
        report_dir=str(getattr(parsed, "capacity_report", "") or report_dir),
        baseline=str(getattr(parsed, "capacity_baseline", "") or "") or None,
        tolerance=parse_tolerance(getattr(parsed, "capacity_tolerance", "10%")),
    )


# -- schedule -----------------------------------------------------------------


def step_target(step: int, options: CapacityOptions) -> int:
    """Users at step `step` (1-based): step_users more each step, capped at max_users."""
    return min(step * options.step_users, options.max_users)


def schedule(options: CapacityOptions) -> list[int]:
    return [step_target(step, options) for step in range(1, options.max_steps + 1)]


def step_budget(options: CapacityOptions) -> float:
    """Longest one step can take: ramp (bounded), settle, the window, a tick of slack."""
    return options.ramp_limit + options.settle + options.step_time + 1.0


def time_bound(options: CapacityOptions, steps_done: int = 0) -> float:
    """Upper bound of the seconds the remaining steps can take (the run stops by itself)."""
    return max(0, options.max_steps - steps_done) * step_budget(options)


# -- per-step stats -------------------------------------------------------------


def snapshot(request_stats: Any) -> Snapshot:
    """Locust's cumulative RequestStats, copied so a later snapshot can be diffed against it."""

    def one(entry: Any) -> tuple[int, int, float, dict[int, int], dict[int, int]]:
        return (entry.num_requests, entry.num_failures, entry.total_response_time, dict(entry.response_times),
                dict(entry.num_reqs_per_sec))

    snap = {entry.name: one(entry) for entry in request_stats.entries.values()}
    snap["Aggregated"] = one(request_stats.total)
    return snap


def span_rate(per_second: Mapping[int, int], span: tuple[float, float] | None) -> float | None:
    """Requests per second over the whole seconds inside `span` (unix times), from Locust's
    per-second counts; None when the span holds no whole second."""
    if span is None:
        return None
    seconds = range(math.ceil(span[0]), math.floor(span[1]))
    if not seconds:
        return None
    return sum(per_second.get(second, 0) for second in seconds) / len(seconds)


def window_stats(
    before: Snapshot,
    after: Snapshot,
    seconds: float,
    percentiles: Iterable[float] = (),
    span: tuple[float, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Stats of what happened between two snapshots, in the format check_timing reads.

    Counts and latencies are the difference of the snapshots. The rate comes from the
    per-second counts over `span` when given: on a master the counts arrive in 3 s
    worker reports, so the difference alone would over- or under-count a short window.
    If the counts went down (Locust's stats were reset in between, e.g. --reset-stats),
    `after` alone is the best evidence there is.
    """
    wanted = sorted({*PERCENTILES, *REPORTED_PERCENTILES, *percentiles})
    table: dict[str, dict[str, Any]] = {}
    for name, (count1, fail1, total1, times1, per_second) in after.items():
        count0, fail0, total0, times0, _ = before.get(name, (0, 0, 0.0, {}, {}))
        if count1 < count0 or fail1 < fail0:
            count0, fail0, total0, times0 = 0, 0, 0.0, {}
        count, failures = count1 - count0, fail1 - fail0
        rate = span_rate(per_second, span)
        times = diff_response_time_dicts(times1, times0)
        keys = [key for key, n in times.items() if n > 0]
        table[name] = {
            "num_requests": count,
            "num_failures": failures,
            "percentiles": {
                p: calculate_response_time_percentile(times, count, p / 100.0) if count else None for p in wanted
            },
            "avg": (total1 - total0) / count if count else None,
            "min": min(keys) if keys else None,
            "max": max(keys) if keys else None,
            "rps": rate if rate is not None else (count / seconds if seconds > 0 else 0.0),
        }
    return table


def slo_percentiles(slo: Iterable[str]) -> list[float]:
    return [t.percentile for t in map(parse_threshold, slo) if t.percentile is not None]


# -- one step, the stop rule, the result ----------------------------------------------


@dataclasses.dataclass
class StepResult:
    """One measured step."""

    step: int
    target_users: int
    users: int
    connections: int | None
    seconds: float
    requests: int
    failures: int
    rps: float
    latency: dict[str, dict[str, Any]]
    held: bool
    reasons: list[str]
    loadgen_cpu: float | None = None
    ramp_complete: bool = True
    started_at: float | None = None
    """Wall clock (like a --disrupt record's times) when the step's ramp began."""
    measure_started_at: float | None = None
    """... when its measured window opened (after the ramp and the settle time)."""
    ended_at: float | None = None
    """... when it was measured: the next step begins here."""
    excused_failures: int = 0
    """Failed requests of the window that came during a --disrupt or its reconnect storm
    (socketproof.run.disruptions.EXCUSE_AFTER): the drill's cost, left out of the SLO."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in fields})


def judge_step(
    stats: dict[str, dict[str, Any]], slo: Sequence[str], failed_checks: Sequence[str]
) -> tuple[bool, list[str]]:
    """The stop rule for one step: it holds when every SLO threshold holds and no check is False.

    A threshold that cannot be evaluated (no samples of that request in the window) does
    not hold: a step cannot count as capacity on no evidence.
    """
    verdict = check_timing(stats, slo)
    reasons = [anomaly.message for anomaly in verdict.anomalies]
    for expr, outcome in verdict.stats.get("thresholds", {}).items():
        if outcome.get("valid") == UNKNOWN:
            reasons.append(f"{expr}: {outcome.get('reason', 'no evidence')}")
    reasons += [f"check {name} FAIL" for name in failed_checks]
    return not reasons, reasons


def excuse(stats: dict[str, dict[str, Any]], excused: int) -> dict[str, dict[str, Any]]:
    """`stats` with `excused` failures taken off the Aggregated row (never below 0), as the run's
    exit code leaves out what a --disrupt explains. Only the total is known (the schedule counts
    failures, not their names), so a per-name `NAME:failures<...` still counts them."""
    total = stats.get("Aggregated")
    if excused <= 0 or total is None:
        return stats
    return {**stats, "Aggregated": {**total, "num_failures": max(0, total["num_failures"] - excused)}}


def should_stop(step: StepResult, options: CapacityOptions) -> bool:
    """Stop at the first step that breaks the SLO, or after the last step of the schedule."""
    return not step.held or step.step >= options.max_steps


def latency_rows(stats: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """p50/p95/p99, rps, requests and failures per request name, for the result file."""
    return {
        name: {
            "requests": entry["num_requests"],
            "failures": entry["num_failures"],
            "rps": round(entry["rps"], 3),
            **{f"p{p}": entry["percentiles"].get(p) for p in REPORTED_PERCENTILES},
        }
        for name, entry in sorted(stats.items())
        if entry["num_requests"]
    }


def capacity_step(steps: Sequence[StepResult]) -> StepResult | None:
    """The last step that held before the first one that broke (None: not even the first)."""
    best = None
    for step in steps:
        if not step.held:
            break
        best = step
    return best


def broken_step(steps: Sequence[StepResult]) -> StepResult | None:
    return next((step for step in steps if not step.held), None)


def build_result(
    options: CapacityOptions, steps: Sequence[StepResult], complete: bool, meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What capacity.json holds."""
    best, broke = capacity_step(steps), broken_step(steps)
    return {
        "version": RESULT_VERSION,
        **(meta or {}),
        "slo": list(options.slo),
        "checks": list(options.checks),
        "step_users": options.step_users,
        "step_time": options.step_time,
        "max_users": options.max_users,
        "complete": complete,
        "capacity": None if best is None else figures(best),
        "capacity_step": None if best is None else best.step,
        "broke_at": None if broke is None else {"step": broke.step, "users": broke.users, "reasons": broke.reasons},
        "ceiling_reached": complete and broke is None and bool(steps),
        "steps": [step.to_dict() for step in steps],
    }


def figures(step: StepResult) -> dict[str, Any]:
    return {
        "users": step.users,
        "connections": step.connections,
        "round_trips_per_s": round(step.rps, 3),
        "latency": step.latency,
    }


# -- release gate -----------------------------------------------------------------


@dataclasses.dataclass
class Comparison:
    """This build's capacity against a stored one; the gate is the users held."""

    baseline_users: int
    users: int
    change: float | None
    regressed: bool
    rows: list[tuple[str, Any, Any, float | None]]
    notes: list[str]


def _held(result: Mapping[str, Any]) -> dict[str, Any]:
    return result.get("capacity") or {"users": 0, "connections": 0, "round_trips_per_s": 0.0}


def _change(old: Any, new: Any) -> float | None:
    if not isinstance(old, (int, float)) or not isinstance(new, (int, float)) or old == 0:
        return None
    return (new - old) / old


def compare(current: Mapping[str, Any], baseline: Mapping[str, Any], tolerance: float) -> Comparison:
    """Regressed when the users held fell by more than `tolerance` (a fraction)."""
    now, then = _held(current), _held(baseline)
    rows = [
        (label, then.get(key), now.get(key), _change(then.get(key), now.get(key)))
        for label, key in (("users", "users"), ("connections", "connections"), ("round trips/s", "round_trips_per_s"))
    ]
    users, baseline_users = int(now.get("users") or 0), int(then.get("users") or 0)
    change = _change(baseline_users, users)
    regressed = users < baseline_users * (1.0 - tolerance)
    notes = []
    if list(current.get("slo", [])) != list(baseline.get("slo", [])):
        notes.append(f"the SLOs differ: baseline {baseline.get('slo')}, this run {current.get('slo')}")
    if current.get("step_users") != baseline.get("step_users"):
        notes.append(
            f"the steps differ: baseline {baseline.get('step_users')} users, this run {current.get('step_users')}"
        )
    if baseline.get("ceiling_reached"):
        notes.append("the baseline reached its --max-users without breaking: its capacity is a lower bound")
    return Comparison(baseline_users, users, change, regressed, rows, notes)


# -- the step machine ------------------------------------------------------------------


class Probe(Protocol):
    """What the controller reads from the running test (the Locust side implements it)."""

    def users(self) -> int: ...

    def snapshot(self) -> Snapshot: ...

    def connections(self) -> int | None: ...

    def failed_checks(self) -> list[str]: ...

    def cpu(self) -> float | None: ...

    def excused_failures(self) -> int:
        """Failed requests so far that a --disrupt explains (cumulative)."""
        ...


class StepController:
    """ramp -> settle -> measure, step after step; `tick()` is LoadTestShape.tick's answer.

    The window of a step opens once its users run (or the ramp limit passed) and the
    settle time is over, so connecting users are not measured as steady load.
    """

    def __init__(
        self,
        options: CapacityOptions,
        probe: Probe,
        clock: Callable[[], float] = time.monotonic,
        on_step: Callable[[StepResult, float, float], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.probe = probe
        self.clock = clock
        self.wall = wall
        self.on_step = on_step
        self.reset()

    def reset(self) -> None:
        self.steps: list[StepResult] = []
        self.phase = "idle"
        self.step = 0
        self.target = 0
        self.started = 0.0
        self.deadline = 0.0
        self.window_start = 0.0
        self.wall_start = 0.0
        self.step_wall_start = 0.0
        self.excused_before = 0
        self.before: Snapshot = {}
        self.ramp_complete = True

    @property
    def finished(self) -> bool:
        return self.phase == "done"

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started if self.phase != "idle" else 0.0

    def tick(self) -> tuple[int, float] | None:
        now = self.clock()
        if self.phase == "done":
            return None
        if self.phase == "idle":
            self.started = now
            self._begin(1, now, self.wall())
        if self.phase == "ramp":
            running = self.probe.users() >= self.target
            if running or now >= self.deadline:
                self.ramp_complete = running
                self.phase, self.deadline = "settle", now + self.options.settle
        if self.phase == "settle" and now >= self.deadline:
            self.phase, self.before, self.window_start = "measure", self.probe.snapshot(), now
            self.wall_start, self.excused_before = self.wall(), self.probe.excused_failures()
        if self.phase == "measure" and now - self.window_start >= self.options.step_time:
            wall = self.wall()  # one reading: this step ends where the next begins
            result = self._measure(now, wall)
            self.steps.append(result)
            if self.on_step is not None:
                self.on_step(result, now - self.started, time_bound(self.options, result.step))
            if should_stop(result, self.options):
                self.phase = "done"
                return None
            self._begin(result.step + 1, now, wall)
        return self.target, self.options.spawn_rate

    def _begin(self, step: int, now: float, wall: float) -> None:
        self.step, self.target = step, step_target(step, self.options)
        self.phase, self.deadline = "ramp", now + self.options.ramp_limit
        self.step_wall_start = wall

    def _measure(self, now: float, wall: float) -> StepResult:
        seconds, lag = now - self.window_start, self.options.lag
        span = (self.wall_start - lag, self.wall_start + seconds - lag)
        stats = window_stats(self.before, self.probe.snapshot(), seconds, slo_percentiles(self.options.slo), span)
        excused = max(0, self.probe.excused_failures() - self.excused_before)
        failed = self.probe.failed_checks()
        held, reasons = judge_step(excuse(stats, excused), self.options.slo, failed)
        total = stats.get("Aggregated", {"num_requests": 0, "num_failures": 0, "rps": 0.0})
        return StepResult(
            step=self.step,
            target_users=self.target,
            users=self.probe.users(),
            connections=self.probe.connections(),
            seconds=round(seconds, 3),
            requests=total["num_requests"],
            failures=total["num_failures"],
            rps=total["rps"],
            latency=latency_rows(stats),
            held=held,
            reasons=reasons,
            loadgen_cpu=self.probe.cpu(),
            ramp_complete=self.ramp_complete,
            started_at=self.step_wall_start,
            measure_started_at=self.wall_start,
            ended_at=wall,
            excused_failures=excused,
        )
