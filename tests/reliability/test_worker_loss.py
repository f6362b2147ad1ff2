"""A distributed run cannot pass by losing a worker (issue 27): a real master and real workers,
separate processes started by hand as the README's multi-machine recipe does (on one machine),
one worker killed with SIGKILL mid-run.

The master names the worker whose history never came; no check passes on part of the evidence
(UNKNOWN, with the worker named, or FAIL), and --strict makes that exit 1. A worker that joins
after the start is judged with the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.socketproof.support import ROOT, clean_environment, run_locust
from tests.user.support import free_port, stop_group


def worker(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as output:
        return subprocess.Popen([sys.executable, "-m", "locust", "--worker", "--master-host", "127.0.0.1",
                                 "--master-port", str(port)], cwd=ROOT, env=clean_environment(None),
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def master(port: int, report_dir: Path, *extra: str):  # noqa: ANN201 - a LocustRun
    return run_locust(["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                       "--users", "10", "--spawn-rate", "10", *extra], report_dir)


def test_a_worker_killed_mid_run_is_named_and_nothing_passes(tmp_path: Path) -> None:
    port = free_port()
    workers = [worker(port, tmp_path / f"worker{n}.log") for n in range(2)]
    killer = threading.Timer(9.0, lambda: os.killpg(workers[0].pid, signal.SIGKILL))
    killer.start()
    try:
        run = master(port, tmp_path / "reports", "--expect-workers", "2", "--run-time", "18s", "--strict")
    finally:
        killer.cancel()
        for process in workers:
            stop_group(process, grace=10)
    assert workers[0].returncode == -signal.SIGKILL, "the first worker was killed mid-run"
    assert run.returncode == 1, run.describe()  # --strict: UNKNOWN fails the run
    checks = json.loads((tmp_path / "reports" / "checks.json").read_text())
    assert len(checks["missing_workers"]) == 1 and checks["history_complete"] is False, checks
    named = checks["missing_workers"][0]
    verdicts = {v["name"]: v for v in checks["verdicts"]}
    assert all(v["valid"] is not True for v in verdicts.values()), {n: v["valid"] for n, v in verdicts.items()}
    for name in ("ordering", "duplicates", "loss"):
        if verdicts[name]["valid"] == "unknown":
            assert named in verdicts[name]["stats"]["reason"], verdicts[name]
    assert "no history from worker" in run.stderr and "PASS" not in run.stdout.split("Overall", 1)[1].split("\n")[0]
    assert not run.leftovers


def test_a_worker_that_joins_late_is_judged_with_the_others(tmp_path: Path) -> None:
    port = free_port()
    first = worker(port, tmp_path / "first.log")
    late: list[subprocess.Popen[bytes]] = []
    joiner = threading.Timer(4.0, lambda: late.append(worker(port, tmp_path / "late.log")))
    joiner.start()
    try:
        run = master(port, tmp_path / "reports", "--expect-workers", "1", "--run-time", "14s",
                     "--enable-rebalancing")
    finally:
        joiner.cancel()
        for process in [first, *late]:
            stop_group(process, grace=10)
    assert run.returncode == 0, run.describe()
    checks = json.loads((tmp_path / "reports" / "checks.json").read_text())
    assert checks["history_complete"] is True and checks["missing_workers"] == []
    assert len(checks["connections_by_process"]) == 2, checks  # the late worker's part is in
    for name in ("ordering", "duplicates", "loss"):
        assert {v["name"]: v for v in checks["verdicts"]}[name]["valid"] is True, checks["verdicts"]
    assert not run.leftovers
