"""The fault matrix: every fault switch of the reference server fails the check made for it.

One short headless run per switch (two at a time), plus a clean run that must pass. The
matrix (fault -> failing checks and their anomaly kinds) is printed in pytest's terminal
summary and written to reports/checks-fault-matrix.json.
"""

from __future__ import annotations

import json
import time

from tests.socketproof.conftest import FAULT_MATRIX, format_matrix
from tests.socketproof.support import ROOT, RunPool

FAULT_RUN = ["-u", "20", "-r", "20", "-t", "8s"]
MATRIX_FILE = ROOT / "reports" / "checks-fault-matrix.json"

# (SOCKETPROOF_FAULTS, extra locust arguments, the check that must be False, the anomaly kind it must name)
FAULTS = [
    ("leak_connections", [], "cleanup", "leak"),  # first: its end waits for /stats to settle
    ("drop=0.2", [], "loss", "lost"),
    ("duplicate=0.2", [], "duplicates", "duplicate_seq"),
    ("reorder=0.2", [], "ordering", "out_of_order"),
    ("delay_ms=200", ["--threshold", "echo:p95<50"], "timing", "threshold"),
    ("skip_heartbeat", [], "heartbeat", "no_pings"),
    ("stale_snapshot", [], "state", "version"),
    # Only the offline flow (locustfiles/offline.py) resumes with replays of several messages:
    # about 15 resumes in 8 s, and every one of them proves the fault.
    ("replay_reorder", [], "ordering", "out_of_order"),
    ("replay_drop", [], "loss", "lost"),
    ("replay_duplicate", [], "duplicates", "duplicate_seq"),
    ("", [], None, None),
]


def fault_run_name(faults: str) -> str:
    return "fault-" + (faults.replace("=", "-") or "none")


def test_every_fault_fails_its_check_and_a_clean_run_passes(locust_runs: RunPool) -> None:
    started = time.monotonic()
    for faults, extra, _, _ in FAULTS:
        env = {"SOCKETPROOF_FAULTS": faults} if faults else {}
        locust_runs.start(fault_run_name(faults), [*FAULT_RUN, *extra], env)
    rows, problems = [], []
    for faults, extra, check, kind in FAULTS:
        run = locust_runs.result(fault_run_name(faults))
        failing = run.failing()
        row = {
            "fault": faults or "(none)",
            "args": extra,
            "exit_code": run.returncode,
            "seconds": round(run.seconds, 1),
            "expected": {"check": check, "anomaly": kind, "exit_code": 1 if check else 0},
            "failing": failing,
        }
        if check is None:
            ok = run.returncode == 0 and not failing and run.checks["valid"] is True
        else:
            ok = run.returncode == 1 and run.verdicts[check]["valid"] is False and kind in run.anomaly_kinds(check)
        row["ok"] = ok
        rows.append(row)
        if not ok:
            problems.append(f"{row['fault']}: {row}\n{run.describe(1500)}")
    FAULT_MATRIX[:] = rows
    print("\n" + "\n".join(format_matrix(rows)))
    MATRIX_FILE.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "run": " ".join(["locust", "--headless", *FAULT_RUN]),
        "wall_seconds": round(time.monotonic() - started, 1),
        "matrix": rows,
    }
    MATRIX_FILE.write_text(json.dumps(summary, indent=2) + "\n")
    assert not problems, "\n\n".join(problems)
