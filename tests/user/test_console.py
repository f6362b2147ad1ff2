"""What a headless run prints: a progress line while it runs, and an end that fits one screen.

locust.conf sets only-summary: Locust's request table comes once, at the end, not every 2 s.
Then the verdicts, where the reports went (the --html report included) and the exit code's meaning.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.socketproof.support import ROOT, clean_environment

SCREEN = 60
"""Lines of one terminal screen (a generous one)."""


def test_headless_run_shows_progress_then_one_screen_of_results(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "locust"), "--headless", "-u", "10", "-r", "10", "-t", "12s",
         "--checks-report", str(tmp_path / "reports"), "--html", str(html)],
        cwd=ROOT, env=clean_environment(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=150, start_new_session=True,
    )
    # stdout and stderr both go to the user's terminal; Locust logs and tables on stderr, verdicts on stdout
    output = result.stderr + result.stdout
    assert result.returncode == 0, output[-4000:]

    progress = [line for line in result.stderr.splitlines() if "socketproof: progress " in line]
    assert progress, result.stderr[-3000:]
    assert re.search(r"progress 0:\d\d of 0:12 \(0:\d\d left\): 10 users, [\d,]+ requests, 0 failed, [\d.]+ req/s",
                     progress[0]), progress

    # Locust's request table once (plus its percentile table), not every 2 s
    assert result.stderr.count("Aggregated") == 2, result.stderr[-4000:]

    end = result.stderr[result.stderr.index("Shutting down (exit code"):].splitlines() + result.stdout.splitlines()
    assert len(end) <= SCREEN, "\n".join(end)
    text = "\n".join(end)
    for name in ("connect", "echo", "publish", "deliver"):
        assert re.search(rf"^WS\s+{name}\s", text, re.MULTILINE), name
    assert "Socketproof checks" in result.stdout and "Overall      PASS" in result.stdout, result.stdout
    reports = next(line for line in result.stdout.splitlines() if line.startswith("Reports: "))
    assert "checks.json" in reports and "checks-junit.xml" in reports and str(html) in reports, reports
    assert "Exit code 0: every check passed and no request failed." in result.stdout, result.stdout
    assert "1 = a check or request failed" in result.stdout

    page = html.read_text()
    assert page.count("<h2>Socketproof checks</h2>") == 1
    for check in ("ordering", "duplicates", "loss", "cleanup", "heartbeat", "state"):
        assert f"<td>{check}</td>" in page, check
    assert "font-weight:bold\">PASS</td>" in page
