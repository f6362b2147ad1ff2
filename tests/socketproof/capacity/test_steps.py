"""socketproof.capacity.steps and .report as plain functions: schedule, stop rule, per-step
stats, the step machine (driven by a fake clock and a simulated server), the baseline gate
and the files. The real Locust run is in test_capacity_run.py."""

from __future__ import annotations

import base64
import json
import types

import pytest

from socketproof.capacity import report
from socketproof.capacity import steps as cap

# -- options and schedule -----------------------------------------------------------


def parsed(**overrides: object) -> types.SimpleNamespace:
    values = {"step_users": 10, "step_time": "20s", "max_users": 200, "capacity_report": "",
              "capacity_baseline": "", "capacity_tolerance": "10%"}
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_schedule_adds_step_users_and_caps_the_last_step_at_max_users() -> None:
    options = cap.CapacityOptions(step_users=10, max_users=35)
    assert cap.schedule(options) == [10, 20, 30, 35]
    assert options.max_steps == 4
    assert cap.step_target(9, options) == 35


def test_time_bound_covers_every_step_and_shrinks_as_steps_finish() -> None:
    options = cap.CapacityOptions(step_users=10, max_users=30, step_time=5.0, settle=2.0)
    budget = cap.step_budget(options)
    assert budget >= options.step_time + options.settle + options.ramp_limit
    assert cap.time_bound(options) == 3 * budget
    assert cap.time_bound(options, steps_done=2) == budget
    assert cap.time_bound(options, steps_done=5) == 0


def test_parse_options_reads_the_flags() -> None:
    options = cap.parse_options(
        parsed(step_users="25", step_time="1m", max_users="100", capacity_tolerance="5%",
               capacity_baseline="prev.json"),
        ["echo:p95<50"], ("loss", "timing", "ordering"), "out",
    )
    assert (options.step_users, options.step_time, options.max_users) == (25, 60.0, 100)
    assert options.slo == ("echo:p95<50", "failures<1%")
    assert options.checks == ("loss", "ordering")  # timing is the SLO, judged per step
    assert (options.report_dir, options.baseline, options.tolerance) == ("out", "prev.json", 0.05)
    assert cap.parse_options(parsed(step_time="2.5", capacity_report="cap"), [], (), "out").step_time == 2.5
    assert cap.parse_options(parsed(capacity_report="cap"), [], (), "out").report_dir == "cap"


def test_a_failures_threshold_replaces_the_default_one() -> None:
    assert cap.slo_of(["failures<5%", "echo:p99<80"]) == ("failures<5%", "echo:p99<80")
    assert cap.slo_of([]) == (cap.DEFAULT_FAILURES,)


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"step_users": 0}, "--step-users"),
        ({"step_users": "ten"}, "--step-users"),
        ({"max_users": 5}, "--max-users"),
        ({"step_time": "soon"}, "--step-time"),
        ({"step_time": "0.5"}, "--step-time"),
        ({"capacity_tolerance": "lots"}, "--capacity-tolerance"),
        ({"capacity_tolerance": "100%"}, "--capacity-tolerance"),
    ],
)
def test_bad_values_name_their_flag(overrides: dict[str, object], flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        cap.parse_options(parsed(**overrides), [], (), "reports")


# -- per-step stats and the stop rule ---------------------------------------------------


def snap(**entries: tuple[int, int, dict[int, int]]) -> cap.Snapshot:
    """name=(requests, failures, {ms: count}); total time from the histogram, no per-second counts."""
    out = {}
    for name, (count, failures, times) in entries.items():
        out[name] = (count, failures, float(sum(ms * n for ms, n in times.items())), dict(times), {})
    return out


def test_window_stats_are_the_difference_not_the_cumulative_stats() -> None:
    before = snap(echo=(100, 0, {10: 100}))
    after = snap(echo=(200, 5, {10: 100, 200: 100}))
    stats = cap.window_stats(before, after, 10.0)["echo"]
    assert (stats["num_requests"], stats["num_failures"], stats["rps"]) == (100, 5, 10.0)
    assert stats["percentiles"][50] == 200  # cumulatively it would be 10
    assert (stats["min"], stats["max"], stats["avg"]) == (200, 200, 200.0)


def test_window_stats_add_the_percentiles_the_slo_names() -> None:
    after = snap(echo=(100, 0, {10: 80, 90: 20}))
    stats = cap.window_stats({}, after, 1.0, cap.slo_percentiles(["echo:p75<50"]))
    assert stats["echo"]["percentiles"][75] == 10
    assert stats["echo"]["percentiles"][95] == 90


def test_the_rate_comes_from_the_whole_seconds_of_the_span_when_there_is_one() -> None:
    per_second = {99: 1000, 100: 10, 101: 20, 102: 30, 103: 1000}
    assert cap.span_rate(per_second, (99.5, 103.0)) == 20.0  # 100, 101, 102: whole seconds only
    assert cap.span_rate(per_second, (100.2, 100.9)) is None
    after = {"Aggregated": (2060, 0, 0.0, {1: 2060}, per_second)}
    assert cap.window_stats({}, after, 3.5, span=(99.5, 103.0))["Aggregated"]["rps"] == 20.0


def test_window_stats_after_a_stats_reset_use_the_new_counts() -> None:
    before = snap(echo=(500, 0, {10: 500}))
    after = snap(echo=(50, 0, {30: 50}))
    assert cap.window_stats(before, after, 5.0)["echo"]["num_requests"] == 50


def test_a_step_holds_only_when_every_threshold_holds_and_no_check_failed() -> None:
    slo = ("echo:p95<50", "failures<1%")
    fast = cap.window_stats({}, snap(echo=(100, 0, {5: 100}), Aggregated=(100, 0, {5: 100})), 1.0)
    slow = cap.window_stats({}, snap(echo=(100, 0, {80: 100}), Aggregated=(100, 0, {80: 100})), 1.0)
    failing = cap.window_stats({}, snap(echo=(100, 0, {5: 100}), Aggregated=(100, 2, {5: 100})), 1.0)
    assert cap.judge_step(fast, slo, []) == (True, [])
    held, reasons = cap.judge_step(slow, slo, [])
    assert not held and "echo:p95<50" in reasons[0]
    assert not cap.judge_step(failing, slo, [])[0]
    assert cap.judge_step(fast, slo, ["loss"]) == (False, ["check loss FAIL"])
    no_echo = cap.window_stats({}, snap(Aggregated=(100, 0, {5: 100})), 1.0)
    held, reasons = cap.judge_step(no_echo, slo, [])
    assert not held and "no samples for 'echo'" in reasons[0]


# -- the step machine ---------------------------------------------------------------------


class SimulatedServer:
    """A fake clock and a Probe: every running user makes 2 echoes/s whose latency is
    base_ms + users * ms_per_user (latency that grows with load), and ramps take
    `ramp_ticks` ticks."""

    def __init__(self, base_ms: int = 0, ms_per_user: float = 1.0, ramp_ticks: int = 1, max_running: int = 10**9,
                 report_lag: int = 0):
        self.now = 1000.0
        self.report_lag = report_lag  # like a master: the last seconds have not been reported yet
        self.base_ms, self.ms_per_user = base_ms, ms_per_user
        self.ramp_ticks, self.max_running = ramp_ticks, max_running
        self.target = self.running = 0
        self.count = 0
        self.times: dict[int, int] = {}
        self.per_second: dict[int, int] = {}
        self.checks_failing: list[str] = []
        self.failing_from: float | None = None  # from then on, every 10th request fails ...
        self.excusing = False  # ... and a --disrupt schedule counts them as its own
        self.failures = self.excused = 0
        self._ramp_left = 0

    def clock(self) -> float:
        return self.now

    def users(self) -> int:
        return self.running

    def snapshot(self) -> cap.Snapshot:
        total = float(sum(ms * n for ms, n in self.times.items()))
        seen = {t: n for t, n in self.per_second.items() if t < self.now - self.report_lag}
        entry = (self.count, self.failures, total, dict(self.times), seen)
        return {"echo": entry, "Aggregated": entry}

    def connections(self) -> int:
        return self.running

    def failed_checks(self) -> list[str]:
        return list(self.checks_failing)

    def cpu(self) -> float:
        return 42.0

    def excused_failures(self) -> int:
        return self.excused

    def advance(self, target: int) -> None:
        """One second of load at `target` users."""
        if target != self.target:
            self.target, self._ramp_left = target, self.ramp_ticks
        if self._ramp_left:
            self._ramp_left -= 1
        else:
            self.running = min(self.target, self.max_running)
        latency = int(self.base_ms + self.running * self.ms_per_user)
        self.times[latency] = self.times.get(latency, 0) + 2 * self.running
        self.count += 2 * self.running
        if self.failing_from is not None and self.now >= self.failing_from:
            failed = 2 * self.running // 10
            self.failures += failed
            self.excused += failed if self.excusing else 0
        self.per_second[int(self.now)] = self.per_second.get(int(self.now), 0) + 2 * self.running
        self.now += 1.0


def drive(controller: cap.StepController, server: SimulatedServer, limit: int = 10_000) -> int:
    """Tick like Locust's shape worker (once a second) until the shape says stop; returns ticks."""
    for ticks in range(1, limit):
        action = controller.tick()
        if action is None:
            return ticks
        server.advance(action[0])
    raise AssertionError("the capacity shape never stopped")


def options(**overrides: object) -> cap.CapacityOptions:
    values: dict[str, object] = {"step_users": 10, "max_users": 100, "step_time": 5.0, "settle": 1.0,
                                 "slo": ("echo:p95<35", "failures<1%")}
    values.update(overrides)
    return cap.CapacityOptions(**values)  # type: ignore[arg-type]


def test_it_stops_at_the_first_step_that_breaks_and_capacity_is_the_last_that_held() -> None:
    server = SimulatedServer(ms_per_user=1.0)
    printed: list[tuple[int, float, float]] = []
    opts = options()
    controller = cap.StepController(
        opts, server, server.clock, lambda s, e, r: printed.append((s.step, e, r)), wall=server.clock
    )
    ticks = drive(controller, server)
    assert [step.target_users for step in controller.steps] == [10, 20, 30, 40]
    assert [step.held for step in controller.steps] == [True, True, True, False]
    assert controller.finished and controller.tick() is None
    best = cap.capacity_step(controller.steps)
    assert best is not None and (best.users, best.connections) == (30, 30)
    assert best.rps == 60.0  # 2 echoes/s per user, over the whole seconds of the window
    assert best.latency["echo"]["p95"] == 30  # this step's latency, not the run's so far
    assert ticks <= cap.time_bound(opts) + 2
    assert [p[0] for p in printed] == [1, 2, 3, 4]
    assert printed[-1][2] < printed[0][2]  # the remaining-time bound shrinks


def test_a_constant_delay_lowers_the_capacity_at_the_same_slo() -> None:
    plain, delayed = SimulatedServer(ms_per_user=1.0), SimulatedServer(base_ms=20, ms_per_user=1.0)
    found = []
    for server in (plain, delayed):
        controller = cap.StepController(options(), server, server.clock, wall=server.clock)
        drive(controller, server)
        found.append(cap.capacity_step(controller.steps).users)  # type: ignore[union-attr]
    assert found == [30, 10]


@pytest.mark.parametrize(("lag", "expected"), [(0.0, 20.0), (3.0, 20.0)])
def test_the_rate_is_measured_behind_the_reports_of_a_master(lag: float, expected: float) -> None:
    server = SimulatedServer(ms_per_user=0.1, report_lag=3 if lag else 0)
    opts = options(max_users=10, lag=lag, settle=max(1.0, lag))
    controller = cap.StepController(opts, server, server.clock, wall=server.clock)
    drive(controller, server)
    assert controller.steps[0].rps == expected


def test_a_master_that_ignored_its_report_lag_would_undercount() -> None:
    server = SimulatedServer(ms_per_user=0.1, report_lag=3)
    controller = cap.StepController(options(max_users=10), server, server.clock, wall=server.clock)
    drive(controller, server)
    assert controller.steps[0].rps < 20.0


def test_without_a_break_it_stops_after_the_last_step() -> None:
    server = SimulatedServer(ms_per_user=0.1)
    opts = options(max_users=45)
    controller = cap.StepController(opts, server, server.clock, wall=server.clock)
    drive(controller, server)
    assert [step.target_users for step in controller.steps] == [10, 20, 30, 40, 45]
    result = cap.build_result(opts, controller.steps, controller.finished)
    assert result["ceiling_reached"] and result["broke_at"] is None and result["capacity"]["users"] == 45


def test_a_failed_check_breaks_the_step() -> None:
    server = SimulatedServer(ms_per_user=0.1)
    controller = cap.StepController(options(), server, server.clock, wall=server.clock)
    for _ in range(200):
        if len(controller.steps) == 2:
            server.checks_failing = ["ordering"]
        action = controller.tick()
        if action is None:
            break
        server.advance(action[0])
    assert [step.held for step in controller.steps] == [True, True, False]
    assert controller.steps[-1].reasons == ["check ordering FAIL"]


@pytest.mark.parametrize("excusing", [True, False])
def test_failures_a_disruption_explains_do_not_break_the_step(excusing: bool) -> None:
    """10% of requests fail from step 2's window on: the step holds only when the --disrupt schedule
    counted them as its own; the step records how many it excused and when it ran."""
    server = SimulatedServer(ms_per_user=0.1)
    server.failing_from, server.excusing = 1000.0 + 12, excusing
    controller = cap.StepController(options(max_users=30), server, server.clock, wall=server.clock)
    drive(controller, server)
    if not excusing:
        assert [s.held for s in controller.steps] == [True, False]
        assert "failures<1%" in controller.steps[1].reasons[0] and controller.steps[1].excused_failures == 0
        return
    assert [s.held for s in controller.steps] == [True, True, True]
    assert [s.excused_failures for s in controller.steps] == [s.failures for s in controller.steps]
    assert controller.steps[0].failures == 0 and controller.steps[1].failures > 0
    first, second = controller.steps[:2]
    assert first.started_at == 1000.0 and first.started_at < first.measure_started_at < first.ended_at  # type: ignore
    assert second.started_at == first.ended_at  # steps follow each other: every moment belongs to one


def test_excuse_takes_failures_off_the_aggregated_row_only() -> None:
    table = cap.window_stats({}, snap(echo=(100, 5, {5: 100}), Aggregated=(100, 5, {5: 100})), 1.0)
    excused = cap.excuse(table, 3)
    assert excused["Aggregated"]["num_failures"] == 2 and excused["echo"]["num_failures"] == 5
    assert cap.excuse(table, 9)["Aggregated"]["num_failures"] == 0
    assert cap.excuse(table, 0) is table and table["Aggregated"]["num_failures"] == 5  # not changed in place


def test_a_ramp_that_never_completes_is_measured_after_the_ramp_limit() -> None:
    server = SimulatedServer(ms_per_user=0.1, max_running=15)
    opts = options(max_users=30)
    controller = cap.StepController(opts, server, server.clock, wall=server.clock)
    ticks = drive(controller, server)
    assert [(s.users, s.ramp_complete) for s in controller.steps] == [(10, True), (15, False), (15, False)]
    assert ticks <= cap.time_bound(opts) + 2


def test_the_window_opens_after_the_ramp_and_the_settle_time() -> None:
    server = SimulatedServer(ms_per_user=0.1, ramp_ticks=4)
    controller = cap.StepController(options(max_users=10), server, server.clock, wall=server.clock)
    drive(controller, server)
    (step,) = controller.steps
    assert step.seconds == 5.0
    assert step.requests == 5 * 2 * 10  # only full-load seconds are in the window


def test_reset_starts_a_new_run() -> None:
    server = SimulatedServer(ms_per_user=1.0)
    controller = cap.StepController(options(), server, server.clock, wall=server.clock)
    drive(controller, server)
    controller.reset()
    assert controller.steps == [] and controller.tick() == (10, 10.0)


# -- the baseline gate ----------------------------------------------------------------------


def result_with(users: int | None, connections: int = 0, rps: float = 0.0, **extra: object) -> dict:
    held = None if users is None else {"users": users, "connections": connections, "round_trips_per_s": rps}
    return {"capacity": held, "steps": [], "slo": ["echo:p95<50"], "step_users": 10, **extra}


def test_compare_flags_a_fall_beyond_the_tolerance_only() -> None:
    baseline = result_with(100, 120, 250.0)
    assert not cap.compare(result_with(90, 108, 225.0), baseline, 0.10).regressed  # exactly 10% down
    fell = cap.compare(result_with(80, 96, 200.0), baseline, 0.10)
    assert fell.regressed and fell.change == pytest.approx(-0.2)
    assert fell.rows[0] == ("users", 100, 80, pytest.approx(-0.2))
    assert not cap.compare(result_with(150), baseline, 0.10).regressed
    assert cap.compare(result_with(None), baseline, 0.10).regressed  # nothing held at all
    assert not cap.compare(result_with(10), result_with(None), 0.10).regressed


def test_compare_notes_when_the_runs_are_not_alike() -> None:
    other = result_with(100, slo=["echo:p99<50"], step_users=20, ceiling_reached=True)
    notes = cap.compare(result_with(100), other, 0.1).notes
    assert len(notes) == 3


# -- files and text -------------------------------------------------------------------------


def finished_run(server: SimulatedServer) -> dict:
    opts = options()
    controller = cap.StepController(opts, server, server.clock, wall=server.clock)
    drive(controller, server)
    return cap.build_result(opts, controller.steps, controller.finished, {"host": "ws://127.0.0.1:1"})


def test_reports_write_json_png_and_an_html_page_with_the_plot_inside(tmp_path) -> None:
    result = finished_run(SimulatedServer(ms_per_user=1.0))
    comparison = cap.compare(result, result_with(50), 0.10)
    paths = report.write_all(tmp_path / "out", result, comparison, 0.10)
    assert [p.name for p in paths] == ["capacity.json", "capacity.png", "capacity.html"]
    stored = report.load_result(paths[0])
    assert stored["capacity"]["users"] == 30 and stored["broke_at"]["users"] == 40
    png = paths[1].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    page = paths[2].read_text()
    assert "data:image/png;base64," + base64.b64encode(png).decode()[:200] in page
    assert "REGRESSION" in page and "Capacity: 30 users" in page


def test_summary_prints_the_steps_the_capacity_and_both_figures_side_by_side() -> None:
    result = finished_run(SimulatedServer(ms_per_user=1.0))
    comparison = cap.compare(result, result_with(50, 60, 120.0), 0.10)
    text = report.summary(result, [], comparison, "previous.json", 0.10)
    assert "Capacity: 30 users, 30 connections" in text and "broke at step 4 (40 users)" in text
    users_row = next(line for line in text.splitlines() if line.startswith("users "))
    assert users_row.split() == ["users", "50", "30", "-40.0%"]
    assert "REGRESSION: capacity fell from 50 to 30 users" in text


def test_load_result_rejects_what_is_not_a_capacity_file(tmp_path) -> None:
    bad = tmp_path / "checks.json"
    bad.write_text(json.dumps({"valid": True}))
    with pytest.raises(ValueError, match="not a capacity.json"):
        report.load_result(bad)
    with pytest.raises(ValueError, match="cannot read"):
        report.load_result(tmp_path / "missing.json")


# -- the flags on Locust's real parser -----------------------------------------------------


def test_the_flags_reach_the_capacity_options_through_locusts_parser(tmp_path) -> None:
    from locust.argument_parser import get_parser

    from socketproof.capacity.shape import options_from
    from socketproof.run.arguments import add_arguments

    parser = get_parser()
    if "--capacity" not in parser._option_string_actions:  # socketproof.run.plugin, once imported, adds them
        add_arguments(parser)
    checks = types.SimpleNamespace(thresholds=("echo:p95<50",), names=("loss", "timing"), report_dir="reports")
    assert options_from(parser.parse_args(["--headless"]), checks) is None  # off unless asked for
    baseline = tmp_path / "previous.json"
    report.write_all(tmp_path, finished_run(SimulatedServer(ms_per_user=1.0)))
    (tmp_path / "capacity.json").rename(baseline)
    argv = ["--headless", "--capacity", "--step-users", "50", "--step-time", "15s", "--max-users", "500",
            "--capacity-baseline", str(baseline), "--capacity-tolerance", "5%"]
    options = options_from(parser.parse_args(argv), checks)
    assert options == cap.CapacityOptions(
        step_users=50, step_time=15.0, max_users=500, slo=("echo:p95<50", "failures<1%"), checks=("loss",),
        report_dir="reports", baseline=str(baseline), tolerance=0.05,
    )
    with pytest.raises(ValueError, match="not a capacity.json"):
        (tmp_path / "bad.json").write_text("{}")
        options_from(parser.parse_args([*argv[:-4], "--capacity-baseline", str(tmp_path / "bad.json")]), checks)
