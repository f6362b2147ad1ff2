"""Whole `locust --headless` runs against the embedded reference server, local and --processes 2.

Both runs start together (two at a time) and every test reads what they left: Locust's
stats file, the printed verdict table, checks.json, checks-junit.xml and the --html report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.socketproof.support import EMBEDDED_LOG, LocustRun, RunPool

REQUEST_NAMES = ("connect", "echo", "ping", "publish", "deliver", "refresh", "sync", "update", "reconnect")
HISTORY_CHECKS = {"ordering", "duplicates", "loss", "cleanup", "heartbeat", "state"}
# -t 10s as the issue says; a higher reconnect chance makes a 10 s run all but sure to
# contain a `reconnect` (at the default 0.1 about 1 run in 500 has none).
LOAD = ["-u", "20", "-r", "20", "-t", "10s", "--reconnect-probability", "0.3"]


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    html = locust_runs.base / "local" / "report.html"
    locust_runs.start("local", [*LOAD, "--html", str(html)])
    locust_runs.start("processes-2", [*LOAD, "--processes", "2"])
    return locust_runs


def assert_clean(run: LocustRun) -> None:
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.stderr + run.stdout, run.describe()
    assert not run.leftovers, "a process of the run (embedded server or worker) outlived Locust"
    stats = run.stats
    for name in REQUEST_NAMES:
        assert name in stats, f"no {name!r} requests in the run: {sorted(stats)}\n{run.describe()}"
        assert stats[name]["num_requests"] > 0
        assert stats[name]["num_failures"] == 0, f"{name} failed:\n{run.describe()}"
    checks = run.checks
    assert checks["valid"] is True and checks["exit_code"] == 0 and checks["history_complete"] is True
    assert {name: v["valid"] for name, v in run.verdicts.items()} == dict.fromkeys(HISTORY_CHECKS, True)
    assert checks["connections"] >= 20
    assert EMBEDDED_LOG in run.stderr


def assert_table_printed(run: LocustRun) -> None:
    out = run.stdout
    assert "Socketproof checks" in out, run.describe()
    table = out[out.index("Socketproof checks"):]
    for name in HISTORY_CHECKS:
        assert any(line.split()[:2] == [name, "PASS"] for line in table.splitlines()), table
    assert any(line.split() == ["Overall", "PASS"] for line in table.splitlines()), table
    assert "Exit code 0" in table


def test_local_run_passes_with_every_request_and_all_verdicts_true(runs: RunPool) -> None:
    run = runs.result("local")
    assert_clean(run)
    assert_table_printed(run)
    assert run.checks["connections_by_process"].keys() == {"p0"}


def test_local_run_writes_a_junit_file_with_one_passing_case_per_check(runs: RunPool) -> None:
    run = runs.result("local")
    root = ET.parse(run.report_dir / "checks-junit.xml").getroot()
    found = {case.get("name"): case for case in root.iter("testcase")}
    assert set(found) == HISTORY_CHECKS
    for case in found.values():
        assert case.find("failure") is None and case.find("error") is None and case.find("skipped") is None


def test_html_report_has_the_checks_section_with_the_verdict_rows(runs: RunPool) -> None:
    run = runs.result("local")
    page = (run.report_dir / "report.html").read_text()
    assert page.count("<h2>Socketproof checks</h2>") == 1
    section = page[page.index("<!-- socketproof-checks -->"):]
    assert section.index("</section>") < section.index("</body>")
    for name in HISTORY_CHECKS:
        assert f"<td>{name}</td><td style=\"color:#2e7d32;font-weight:bold\">PASS</td>" in section


def test_processes_2_run_passes_with_both_workers_in_the_history(runs: RunPool) -> None:
    run = runs.result("processes-2")
    assert_clean(run)
    assert_table_printed(run)
    by_process = run.checks["connections_by_process"]
    assert set(by_process) == {"w0", "w1"}, by_process
    assert all(count > 0 for count in by_process.values())
    assert sum(by_process.values()) == run.checks["connections"]
