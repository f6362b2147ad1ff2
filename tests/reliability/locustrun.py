"""Run the real Locust mix (`locust --headless`) as a child process against a host, while
the test does things to the network or the server; read back checks.json and the stats."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOCUST = str(Path(sys.executable).with_name("locust"))


@dataclasses.dataclass
class LocustRun:
    """A running or finished `locust --headless` child."""

    process: subprocess.Popen[str]
    folder: Path

    def wait(self, timeout: float) -> tuple[int, str]:
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate(timeout=10)
            raise AssertionError(f"locust did not finish within {timeout}s:\n{output[-5000:]}") from None
        return self.process.returncode, output

    def checks(self) -> dict[str, Any]:
        return json.loads((self.folder / "reports" / "checks.json").read_text())

    def verdicts(self) -> dict[str, dict[str, Any]]:
        return {verdict["name"]: verdict for verdict in self.checks()["verdicts"]}

    def requests(self) -> dict[str, dict[str, str]]:
        """Locust's stats rows by request name (from --csv)."""
        with open(self.folder / "run_stats.csv", newline="") as handle:
            return {row["Name"]: row for row in csv.DictReader(handle)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


def start_locust(host: str, folder: Path, seconds: int, users: int = 12, extra: tuple[str, ...] = ()) -> LocustRun:
    """`locust --headless` with the project's locustfiles against `host`; request failures
    do not set the exit code (`--exit-code-on-error 0`): only the checks do."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    command = [
        LOCUST, "--headless", "-f", "locustfiles", "--host", host,
        "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "5",
        "--checks-report", str(folder / "reports"), "--csv", str(folder / "run"),
        "--exit-code-on-error", "0", "--only-summary", *extra,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    return LocustRun(process, folder)
