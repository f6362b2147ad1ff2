"""`locust --capacity` for real: the embedded reference server, real sockets, real Locust.

Two short runs (each bounded to 60 s): a clean one that holds every step and writes
capacity.json/.png/.html, then the same check against a server slowed by the `delay_ms`
fault, gated on the first run's result: it breaks at its first step, holds nothing and
exits 1. Speeds are not asserted, only what the SLO makes certain: a 150 ms delay on
every frame can never meet `echo:p95<100`, and nothing on this machine makes a clean
echo take a whole second.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.socketproof.support import run_locust

RUN_LIMIT = 60.0
STEPS = ["--step-users", "3", "--step-time", "3", "--max-users", "6"]
LOAD = ["--send-interval", "0.1", "--identities", "50", "ChatUser"]


def test_capacity_run_writes_its_reports_and_the_gate_fails_a_slower_build(tmp_path: Path) -> None:
    clean = run_locust(
        ["--capacity", *STEPS, "--threshold", "echo:p95<1000", *LOAD], tmp_path / "clean", timeout=RUN_LIMIT
    )
    assert clean.returncode == 0, clean.describe()
    result = json.loads((clean.report_dir / "capacity.json").read_text())
    assert [step["target_users"] for step in result["steps"]] == [3, 6], clean.describe()
    assert all(step["held"] for step in result["steps"]), result["steps"]
    assert result["capacity"]["users"] == 6 and result["ceiling_reached"] and result["complete"]
    assert result["capacity"]["connections"] >= 6  # read from the server's /stats
    assert result["capacity"]["latency"]["echo"]["requests"] > 0
    assert result["slo"] == ["echo:p95<1000", "failures<1%"]
    assert (clean.report_dir / "capacity.png").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (clean.report_dir / "capacity.html").read_text()
    assert "capacity step 1/2: 3 users" in clean.stdout and "capacity step 2/2: 6 users" in clean.stdout
    assert "Capacity: 6 users" in clean.stdout

    slow = run_locust(
        ["--capacity", *STEPS, "--threshold", "echo:p95<100", *LOAD,
         "--capacity-baseline", str(clean.report_dir / "capacity.json")],
        tmp_path / "slow",
        env={"SOCKETPROOF_FAULTS": "delay_ms=150"},
        timeout=RUN_LIMIT,
    )
    assert slow.returncode == 1, slow.describe()
    broken = json.loads((slow.report_dir / "capacity.json").read_text())
    assert broken["server_faults"] == {"delay_ms": 150.0}
    assert len(broken["steps"]) == 1 and broken["capacity"] is None, broken["steps"]  # stopped at once
    assert broken["broke_at"]["step"] == 1 and "echo:p95<100" in broken["broke_at"]["reasons"][0]
    assert "REGRESSION: capacity fell from 6 to 0 users" in slow.stdout, slow.describe()
    users_row = next(line for line in slow.stdout.splitlines() if line.startswith("users "))
    assert users_row.split()[:3] == ["users", "6", "0"]


def test_a_restart_during_a_step_is_marked_on_the_plot_and_its_failures_do_not_break_the_step(tmp_path: Path) -> None:
    """`--disrupt 4s:restart` lands in step 1's measured window (0-1 s ramp, 2 s settle, 3 s window):
    its failed requests (over 1% of the step's, which alone would break it) are the drill's cost,
    so both steps hold; capacity.json places the restart at step 1, the summary and page say so."""
    run = run_locust(
        ["--capacity", *STEPS, "--threshold", "echo:p95<1000", "--disrupt", "4s:restart", *LOAD],
        tmp_path / "drill", timeout=RUN_LIMIT,
    )
    assert run.returncode == 0, run.describe()
    result = json.loads((run.report_dir / "capacity.json").read_text())
    first, second = result["steps"]
    assert first["held"] and second["held"], result["steps"]
    assert first["failures"] > 0 and first["excused_failures"] == first["failures"], first
    [marker] = result["disruptions"]
    assert (marker["label"], marker["step"], marker["users"]) == ("restart @ 4s", 1, 3), marker
    assert marker["where"] == "step 1, measured window" and marker["result"] == "done", marker
    assert first["measure_started_at"] <= marker["started_at"] <= first["ended_at"] == second["started_at"]
    assert (run.report_dir / "capacity.png").read_bytes().startswith(b"\x89PNG")
    assert "disrupt restart @ 4s: step 1, measured window" in (run.report_dir / "capacity.html").read_text()
    assert "disrupt restart @ 4s: step 1, measured window" in run.stdout
    assert "failed requests excused: during a --disrupt" in run.stdout, run.describe()
