"""Run the real `locust` command line as a user would, and read what it leaves behind.

Every run is `sys.executable -m locust --headless ...` from the repo root with its own
report folder; the result carries the exit code, both output streams, checks.json and
Locust's own stats files (--json-file and --csv), so tests assert on content, not
only on exit codes. A run that outlives its timeout is killed with its whole process
group (the embedded server and any --processes workers included) and fails the test.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 150.0
"""Generous: a 10 s run takes ~13 s alone, but the machine has 2 cores and is shared."""
PARALLEL = 2
"""Runs at once: each run is two busy processes (Locust and the server)."""
EMBEDDED_LOG = "started the embedded reference server"


@dataclasses.dataclass
class LocustRun:
    """What one finished `locust` process left behind."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report_dir: Path
    leftovers: bool = False
    """Some process of the run (embedded server, a worker) outlived Locust by seconds."""

    @property
    def checks(self) -> dict[str, Any]:
        path = self.report_dir / "checks.json"
        assert path.exists(), f"no checks.json in {self.report_dir}\n{self.describe()}"
        return json.loads(path.read_text())

    @property
    def verdicts(self) -> dict[str, dict[str, Any]]:
        return {verdict["name"]: verdict for verdict in self.checks["verdicts"]}

    def anomaly_kinds(self, check: str) -> set[str]:
        return {anomaly["kind"] for anomaly in self.verdicts[check]["anomalies"]}

    def failing(self) -> dict[str, list[str]]:
        """check name -> sorted anomaly kinds, for every check that is not True."""
        return {
            name: sorted(self.anomaly_kinds(name)) or [str(verdict["valid"])]
            for name, verdict in self.verdicts.items()
            if verdict["valid"] is not True
        }

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """Locust's --json-file entries by request name."""
        path = self.report_dir / "stats.json"
        assert path.exists(), f"no Locust stats file {path}\n{self.describe()}"
        return {entry["name"]: entry for entry in json.loads(path.read_text())}

    @property
    def failures(self) -> list[dict[str, str]]:
        """Locust's --csv failures rows (Method, Name, Error, Occurrences, ...)."""
        path = self.report_dir / "stats_failures.csv"
        assert path.exists(), f"no Locust failures file {path}\n{self.describe()}"
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def describe(self, tail: int = 3000) -> str:
        return (
            f"locust {' '.join(self.args)} -> exit {self.returncode} in {self.seconds:.1f}s\n"
            f"--- stdout ---\n{self.stdout[-tail:]}\n--- stderr ---\n{self.stderr[-tail:]}"
        )


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Ours without SOCKETPROOF_* (a stray fault switch must not leak in), plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_locust(
    args: Sequence[str],
    report_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
    headless: bool = True,
    cwd: Path = ROOT,
) -> LocustRun:
    """`python -m locust [--headless] ARGS` with reports and stats files in `report_dir`, run in
    `cwd` (the repo, whose locust.conf names the default mix; elsewhere: a user's own folder)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    full = [
        *(["--headless"] if headless else []),
        *args,
        "--checks-report",
        str(report_dir),
        "--json-file",
        str(report_dir / "stats"),
        "--csv",
        str(report_dir / "stats"),
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", *full],
        cwd=cwd,
        env=clean_environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # one process group: a timeout kills server and workers too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=30)
        raise AssertionError(
            f"locust {' '.join(full)} did not finish within {timeout}s\n{stdout[-3000:]}\n{stderr[-3000:]}"
        ) from None
    seconds = time.monotonic() - started
    leftovers = _end_leftovers(process.pid)
    return LocustRun(full, process.returncode, stdout, stderr, seconds, report_dir, leftovers)


def _end_leftovers(group: int, grace: float = 5.0) -> bool:
    """True when some process of the run's group is still alive `grace` s after Locust exited
    (it is then killed: whatever a test starts, it stops)."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return False
        if time.monotonic() > deadline:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return True
        time.sleep(0.1)


class RunPool:
    """Start named runs in the background, at most PARALLEL at once; each name runs once."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="locust-run")
        self.futures: dict[str, concurrent.futures.Future[LocustRun]] = {}

    def start(
        self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = RUN_TIMEOUT
    ) -> concurrent.futures.Future[LocustRun]:
        if name not in self.futures:
            self.futures[name] = self.executor.submit(run_locust, list(args), self.base / name, env, timeout)
        return self.futures[name]

    def result(self, name: str) -> LocustRun:
        return self.futures[name].result(timeout=4 * RUN_TIMEOUT)

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.executor.shutdown(wait=True)
