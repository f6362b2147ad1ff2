"""`--disrupt` in real headless runs against the embedded server: a restart the clients recover
from (exit 0, recovery PASS with its figures), one the server makes slow on purpose
(refuse_after_start: exit 1, recovery FAIL naming the slowest identity), a `run` command's exit
code, and bad specs (exit 2 naming --disrupt)."""

from __future__ import annotations

import pytest

from tests.socketproof.support import RunPool

DRILL = ["-u", "4", "-r", "4", "-t", "20s", "--disrupt", "8s:restart"]
BAD = {
    "disrupt-bad-spec": (["--disrupt", "soon:restart"], "--disrupt 'soon:restart': expected AT:ACTION"),
    "disrupt-cut-no-proxy": (["--disrupt", "2s:cut"], "cut needs the fault proxy: add --proxy-faults"),
    "disrupt-restart-host": (["--disrupt", "2s:restart", "--host", "http://127.0.0.1:9"],
                             "restart needs the embedded reference server"),
}


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    locust_runs.start("disrupt-restart", [*DRILL, "--threshold", "recovery:max<10s"])
    locust_runs.start("disrupt-processes", [*DRILL, "--processes", "2"])
    locust_runs.start("disrupt-refuse", [*DRILL, "--threshold", "recovery:max<3s"],
                      {"SOCKETPROOF_FAULTS": "refuse_after_start=6s"})
    locust_runs.start("disrupt-run-exit-3", ["-u", "2", "-r", "2", "-t", "6s", "--disrupt",
                                             "2s:run echo drill-output; exit 3"])
    locust_runs.start("disrupt-proxy", ["-u", "3", "-r", "3", "-t", "12s", "--proxy-faults", "none",
                                        "--disrupt", "3s:cut", "--disrupt", "6s:pause=2s"])
    for name, (argv, _) in BAD.items():
        locust_runs.start(name, ["-u", "1", "-r", "1", "-t", "3s", *argv], timeout=60)
    return locust_runs


def test_restart_recovers_within_threshold(runs: RunPool) -> None:
    run = runs.result("disrupt-restart")
    assert run.returncode == 0, run.describe()
    recovery = run.verdicts["recovery"]
    assert recovery["valid"] is True, recovery
    [drill] = recovery["stats"]["disruptions"]
    assert drill["result"] == "done" and drill["connections_lost"] > 0, drill
    assert 0 < drill["recovery_s"]["max"] < 10 and drill["storm_peak_per_s"] > 0, drill
    assert drill["never_back_count"] == 0
    latency = drill["deliver_latency_ms"]  # cut out of Locust's deliver stats around the restart
    assert latency["before"]["count"] > 0 and latency["after"]["count"] > 0, latency
    assert latency["before"]["p95"] is not None and latency["after"]["p95"] is not None, latency
    assert drill["outage_messages"]["streams_compared"] > 0, drill  # identities heard from before and after
    assert run.checks["disruptions"][0]["spec"] == "8s:restart"
    assert "disrupt 8s restart: done" in run.stderr + run.stdout
    assert "recovery     PASS" in run.stdout


def test_a_distributed_drill_excuses_the_workers_failed_requests(runs: RunPool) -> None:
    """The master hears of the workers' failures in their stats reports (every 3 s): those that
    came during the restart or its storm are its cost, as on a local runner."""
    run = runs.result("disrupt-processes")
    assert run.verdicts["recovery"]["valid"] is True, run.verdicts["recovery"]
    assert run.verdicts["recovery"]["stats"]["disruptions"][0]["connections_lost"] > 0
    assert run.returncode == 0, run.describe()
    failed = sum(entry["num_failures"] for entry in run.stats.values())
    assert run.checks["failures_during_disruptions"] >= failed, (failed, run.checks)


def test_slow_restart_fails_naming_the_slowest_identity(runs: RunPool) -> None:
    run = runs.result("disrupt-refuse")
    assert run.returncode == 1, run.describe()
    recovery = run.verdicts["recovery"]
    assert recovery["valid"] is False, recovery
    [anomaly] = [a for a in recovery["anomalies"] if a["kind"] == "threshold"]
    slowest = anomaly["evidence"]["slowest"]
    assert slowest["seconds"] >= 3 and slowest["user"] in anomaly["message"], anomaly
    assert "recovery     FAIL" in run.stdout


def test_run_command_exit_code_is_reported(runs: RunPool) -> None:
    run = runs.result("disrupt-run-exit-3")
    output = run.stderr + run.stdout
    assert "disrupt 2s run: drill-output" in output, run.describe()
    assert "disrupt 2s run: failed (exit 3)" in output
    [record] = run.checks["disruptions"]
    assert record["exit_code"] == 3 and record["result"] == "failed"
    recovery = run.verdicts["recovery"]
    assert recovery["valid"] is False and recovery["anomalies"][0]["evidence"]["exit_code"] == 3
    assert run.returncode == 1


def test_proxy_cut_and_pause(runs: RunPool) -> None:
    run = runs.result("disrupt-proxy")
    assert run.returncode == 0, run.describe()
    cut, pause = run.verdicts["recovery"]["stats"]["disruptions"]
    assert cut["result"] == "done" and cut["connections_lost"] > 0, cut
    assert pause["result"] == "done" and pause["ended_at"] - pause["started_at"] >= 2, pause


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_disrupt_is_exit_2_naming_the_option(runs: RunPool, name: str) -> None:
    run = runs.result(name)
    assert run.returncode == 2, run.describe()
    assert BAD[name][1] in run.stderr + run.stdout, run.describe()
