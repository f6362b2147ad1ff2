"""Runs against a broken embedded server (SOCKETPROOF_FAULTS): Locust's stats and the verdicts show it."""

from __future__ import annotations

import pytest

from tests.socketproof.support import LocustRun, RunPool
from tests.socketproof.test_fault_matrix import FAULT_RUN, fault_run_name

CRASH = {"SOCKETPROOF_FAULTS": "crash_on=echo"}
DROP = {"SOCKETPROOF_FAULTS": "drop=0.2"}


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    # The local drop run is the fault matrix's own (same name, same arguments): run once per session.
    locust_runs.start(fault_run_name("drop=0.2"), FAULT_RUN, DROP)
    locust_runs.start("crash-echo", FAULT_RUN, CRASH)
    locust_runs.start("drop-processes-2", [*FAULT_RUN, "--processes", "2"], DROP)
    return locust_runs


def test_crash_on_echo_shows_internal_errors_in_locust_stats(runs: RunPool) -> None:
    run = runs.result("crash-echo")
    assert run.returncode == 1, run.describe()
    assert "Traceback" not in run.stdout + run.stderr
    echo = run.stats["echo"]
    assert echo["num_requests"] > 0 and echo["num_failures"] == echo["num_requests"], echo
    rows = [row for row in run.failures if row["Name"] == "echo"]
    assert rows and all("internal" in row["Error"] for row in rows), run.failures
    assert sum(int(row["Occurrences"]) for row in rows) == echo["num_failures"]
    assert {row["Name"] for row in run.failures} == {"echo"}, "only echo is broken"
    # The history checks are not what failed here: the request failures set the exit code.
    assert run.checks["valid"] is True and run.checks["exit_code"] == 0


def assert_loss_found(run: LocustRun) -> None:
    assert run.returncode == 1, run.describe()
    assert run.verdicts["loss"]["valid"] is False
    assert "lost" in run.anomaly_kinds("loss")
    assert run.checks["exit_code"] == 1
    assert any(line.split()[:2] == ["loss", "FAIL"] for line in run.stdout.splitlines()), run.stdout


def test_drop_gives_loss_false(runs: RunPool) -> None:
    assert_loss_found(runs.result(fault_run_name("drop=0.2")))


def test_drop_with_processes_2_gives_loss_false_too(runs: RunPool) -> None:
    run = runs.result("drop-processes-2")
    assert_loss_found(run)
    assert set(run.checks["connections_by_process"]) == {"w0", "w1"}
    assert run.checks["history_complete"] is True
