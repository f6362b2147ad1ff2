"""The capacity check's Locust side: a step LoadTestShape that `--capacity` switches on.

How Locust 2.47 picks a shape: it takes the first non-abstract LoadTestShape subclass
found in the locustfiles' namespaces (`locust -f locustfiles` imports every .py there not
starting with `_`), so a shape class in locustfiles/ would drive every run. This one lives
here, is marked `abstract` (so a locustfile that imports it still does not activate it),
and is installed from the init event instead: `environment.shape_class` is read after
init, when the headless run starts (`runner.start_shape()`) or the web UI's Start button
is pressed, and `Environment` links a shape to its runner only when both exist at
creation, so the runner is linked here too.

The shape runs on the local runner or the master only, so user counts are totals over
all workers and the per-step stats are the master's aggregated ones (which lag the
workers by their report interval, about 3 s: windows of 10 s or more wash that out).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import sys
import time
from typing import Any

from locust import LoadTestShape
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from history import History
from socketproof.capacity import markers, report
from socketproof.capacity import steps as cap
from socketproof.run.context import RunContext
from socketproof.verdicts.judge import judge

log = logging.getLogger("socketproof")


class LocustProbe:
    """`capacity.Probe` over a live Locust environment."""

    def __init__(self, environment: Any, checker: Any, check_names: tuple[str, ...]) -> None:
        self.environment = environment
        self.checker = checker
        self.check_names = check_names
        self.server_faults: dict[str, Any] | None = None

    @property
    def runner(self) -> Any:
        return self.environment.runner

    def users(self) -> int:
        return int(self.runner.user_count)

    def snapshot(self) -> cap.Snapshot:
        return cap.snapshot(self.runner.stats)

    def connections(self) -> int | None:
        stats = self.checker.server_stats()
        if not isinstance(stats, dict):
            return None
        self.server_faults = stats.get("faults") or {}
        value = stats.get("connections")
        return value if isinstance(value, int) else None

    def failed_checks(self) -> list[str]:
        """The checks whose verdict on the history so far is already False (proof, not suspicion)."""
        if not self.check_names:
            return []
        try:
            history = self._history()
            history.complete = False
            verdicts = judge(history, self.check_names).verdicts
        except Exception:  # noqa: BLE001 - a failing live check must not stop the load; the final one decides
            log.exception("capacity: live checks failed")
            return []
        return [verdict.name for verdict in verdicts if verdict.valid is False]

    def _history(self) -> History:
        if isinstance(self.runner, MasterRunner):
            history = History(complete=False)
            for live in list(self.checker.live_histories.values()):
                history = history.merge(live)
            return history
        return RunContext.of(self.environment).state().recorder.history()

    def cpu(self) -> float | None:
        runner = self.runner
        if isinstance(runner, MasterRunner):
            workers = [client.cpu_usage for client in runner.clients.all]
            return float(max(workers)) if workers else None
        return float(runner.current_cpu_usage)

    def excused_failures(self) -> int:
        """What the run's --disrupt schedule counted so far (the same count that excuses them from the exit code)."""
        schedule = RunContext.of(self.environment).schedule
        return int(schedule.failures_during) if schedule is not None else 0


class CapacityShape(LoadTestShape):
    """Steps of users until the SLO breaks; see socketproof.capacity.steps.StepController."""

    abstract = True  # never auto-selected from a locustfile; `--capacity` installs an instance

    def __init__(self, run: CapacityRun) -> None:
        super().__init__()
        self.run = run

    def tick(self) -> tuple[int, float] | None:
        return self.run.tick()


class CapacityRun:
    """One process's capacity check: the shape, the step prints, the reports and the exit code."""

    def __init__(self, environment: Any, checker: Any, options: cap.CapacityOptions) -> None:
        self.environment = environment
        self.options = options
        self.baseline = report.load_result(options.baseline) if options.baseline else None
        self.probe = LocustProbe(environment, checker, options.checks)
        self.controller = cap.StepController(options, self.probe, on_step=self._on_step)
        self.checker = checker
        self.shape = CapacityShape(self)
        self.started_at = ""
        self.finalized = False
        self.summary = ""

    def install(self) -> None:
        environment = self.environment
        environment.shape_class = self.shape
        self.shape.runner = environment.runner
        if environment.available_shape_classes is not None:  # so --class-picker can offer it too
            environment.available_shape_classes[type(self.shape).__name__] = self.shape
        environment.events.test_stop.add_listener(self.on_test_stop)
        environment.events.quit.add_listener(self.on_quit)

    # -- during the run ---------------------------------------------------------------

    def tick(self) -> tuple[int, float] | None:
        if self.finalized:  # a new run from the web UI after the last one was reported
            self.controller.reset()
            self.finalized = False
            self.summary = ""
        if self.controller.phase == "idle":
            self.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            self._print(self.plan())
        return self.controller.tick()

    def plan(self) -> str:
        o = self.options
        return (
            f"capacity check: steps of {o.step_users} users up to {o.max_users} ({o.max_steps} steps), "
            f"{o.step_time:g}s measured per step after {o.settle:g}s settle; SLO {', '.join(o.slo)}"
            + (f" and checks {', '.join(o.checks)}" if o.checks else "")
            + f"; stops at the first step that breaks it, at most {cap.time_bound(o):.0f}s"
            + self._identity_warning()
        )

    def _identity_warning(self) -> str:
        identities = getattr(self.environment.parsed_options, "identities", None)
        if not isinstance(identities, int) or identities >= self.options.max_users:
            return ""
        return (
            f"\nwarning: --identities {identities} < --max-users {self.options.max_users}: users will share "
            "identities, and the server's per-user connection limit (5 on the reference server) can break a "
            "step the server would otherwise hold; pass --identities at least --max-users"
        )

    def _on_step(self, step: cap.StepResult, elapsed: float, remaining: float) -> None:
        if step.held is False or step.step >= self.options.max_steps:
            remaining = 0.0
        self._print(report.progress_line(step, self.options.max_steps, elapsed, remaining, self.options.slo))

    # -- at the end ---------------------------------------------------------------------

    def on_test_stop(self, environment: Any, **_: Any) -> None:
        """After the checks were judged (their listener was added first): write, compare, set the exit code."""
        if self.finalized or self.controller.phase == "idle":
            return
        self.finalized = True
        result = cap.build_result(self.options, self.controller.steps, self.controller.finished, self.meta())
        result["final_checks"] = self.final_checks()
        result["disruptions"] = markers.place(result["steps"], self.checker.disruptions)
        complete = self.controller.finished  # a run cut short proves no regression: no comparison then
        comparison = cap.compare(result, self.baseline, self.options.tolerance) if self.baseline and complete else None
        try:
            paths = report.write_all(self.options.report_dir, result, comparison, self.options.tolerance)
        except OSError as error:
            log.error("cannot write the capacity reports to %s: %s", self.options.report_dir, error)
            paths = []
        self.summary = report.summary(result, paths, comparison, self.options.baseline, self.options.tolerance)
        self._set_exit_code(result, comparison)
        parsed = environment.parsed_options
        if not (parsed is not None and parsed.headless):
            self._print(self.summary)

    def _set_exit_code(self, result: dict[str, Any], comparison: cap.Comparison | None) -> None:
        """1 when the build lost capacity against the baseline, held no step, or a check failed
        while every step held; 0 otherwise (left alone when the run was cut short).

        0 is set explicitly: requests failing at the step that broke the SLO are what the
        check measures, not an error of the run. The final checks cover the whole run, so
        once a step broke, a FAIL there may come from that overload: it is reported, and
        held steps were checked live at their end (a FAIL then breaks the step).
        """
        if comparison is not None and comparison.regressed:
            self.environment.process_exit_code = 1
        elif not self.controller.finished:
            return
        elif result["capacity"] is None:
            self.environment.process_exit_code = 1
        elif result["broke_at"] is None and result["final_checks"]["failed"]:
            self.environment.process_exit_code = 1
        else:
            self.environment.process_exit_code = 0

    def on_quit(self, exit_code: int, **_: Any) -> None:
        parsed = self.environment.parsed_options
        if self.summary and parsed is not None and parsed.headless:
            self._print(
                self.summary + f"\nCapacity exit code {exit_code}: 0 = a step held (and capacity did not fall "
                "below --capacity-baseline); 1 = it fell, no step held, or a check failed on held load"
            )

    def final_checks(self) -> dict[str, Any]:
        judgement = self.checker.judgement
        if judgement is None:
            return {"valid": None, "failed": False, "failing": []}
        failing = [verdict.name for verdict in judgement.verdicts if verdict.valid is False]
        return {"valid": judgement.overall.valid, "failed": judgement.failed, "failing": failing}

    def meta(self) -> dict[str, Any]:
        runner = self.environment.runner
        workers = len(runner.clients.all) if isinstance(runner, MasterRunner) else 0
        return {
            "host": self.environment.host,
            "server_faults": self.probe.server_faults,
            "started_at": self.started_at,
            "duration_s": round(self.controller.elapsed, 1),
            "load_generator": f"master with {workers} worker(s)" if workers else "local runner",
            "recorded_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    @staticmethod
    def _print(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def install(environment: Any, checker: Any, options: cap.CapacityOptions) -> CapacityRun:
    """Switch the run to the capacity shape (local runner or master; workers just run users).

    The final checks leave `timing` out: the SLO is judged per step, and the run always
    ends with the step that broke it.
    """
    names = tuple(name for name in checker.options.names if name != "timing")
    checker.options = dataclasses.replace(checker.options, names=names)
    if isinstance(environment.runner, MasterRunner):  # stats arrive in worker reports: measure behind them
        lag = WORKER_REPORT_INTERVAL + 1.0
        options = dataclasses.replace(options, lag=lag, settle=max(options.settle, lag))
    run = CapacityRun(environment, checker, options)
    run.install()
    return run


def options_from(parsed: Any, checks: Any) -> cap.CapacityOptions | None:
    """The capacity options when --capacity is on (None otherwise); ValueError names a bad flag.

    A baseline that cannot be read is a usage error too: better now than after the run.
    """
    if not getattr(parsed, "capacity", False):
        return None
    options = cap.parse_options(parsed, checks.thresholds, checks.names, checks.report_dir)
    if options.baseline:
        report.load_result(options.baseline)
    return options
