"""The web UI's Checks tab lists each --disrupt: scheduled before the run, then what became of it
(a real `locust` web UI on the embedded server, read through its own /stats/requests endpoint)."""

from __future__ import annotations

from pathlib import Path

from tests.user.support import post_form, wait_until, web_ui
from tests.user.test_webui_browser import checks_rows, page_text, template_args


def disruption_rows(base: str) -> dict[str, dict]:
    return {row["check"]: row for row in checks_rows(base) if row["check"].startswith("disrupt ")}


def test_checks_tab_shows_each_disruption_and_its_result(tmp_path: Path) -> None:
    args = ["-u", "2", "-r", "2", "--checks-report", str(tmp_path / "reports"),
            "--disrupt", "1s:run echo web-drill", "--disrupt", "2m:run exit 4"]
    with web_ui(args, tmp_path / "locust.log") as base:
        before = disruption_rows(base)
        assert set(before) == {"disrupt 1s:run echo web-drill", "disrupt 2m:run exit 4"}, checks_rows(base)
        assert {row["verdict"] for row in before.values()} == {"scheduled"}, before
        assert before["disrupt 2m:run exit 4"]["evidence"] == "at 120s from the start, run", before

        host = template_args(page_text(base + "/"))["host"]
        started = post_form(base + "/swarm", {"user_count": 2, "spawn_rate": 2, "host": host, "ws_path": "/ws"})
        assert started["success"], started
        live = wait_until(
            lambda: (rows := disruption_rows(base)) and rows["disrupt 1s:run echo web-drill"]["verdict"] == "done"
            and rows, 60, "the 1s disruption done in the Checks tab")
        assert live["disrupt 2m:run exit 4"]["verdict"] == "pending", live
        assert live["disrupt 1s:run echo web-drill"]["evidence"] == "at 1s from the start, run: exit 0", live

        post_form(base + "/stop", {})
        final = wait_until(
            lambda: (rows := disruption_rows(base)) and rows["disrupt 2m:run exit 4"]["verdict"] == "cancelled"
            and rows, 60, "the unrun disruption cancelled after /stop")
        assert final["disrupt 1s:run echo web-drill"]["verdict"] == "done", final
        checks = {row["check"]: row for row in checks_rows(base)}
        assert checks["recovery"]["verdict"] in {"PASS", "FAIL", "UNKNOWN"}, checks
        assert list(checks)[-2:] == ["disrupt 1s:run echo web-drill", "disrupt 2m:run exit 4"], "after the verdicts"
