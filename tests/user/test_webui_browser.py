"""The web UI in a real (headless) Chromium: the start form shows Socketproof's options, the
statistics table fills with WebSocket requests, and the Checks tab shows live, then final, verdicts.

Screenshots are build artefacts in artifacts/screenshots/ (look at them); the assertions read the
UI's own endpoints and the DOM Chromium rendered, not just that a picture was taken.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.socketproof.support import ROOT
from tests.user.support import get_json, post_form, wait_until, web_ui

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
CHECKS_TAB = "socketproof-checks"
VERDICTS = {"PASS", "FAIL", "UNKNOWN"}
SENTINEL_SECRET = "sentinel-secret-that-must-not-reach-the-page-0123456789"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium: `apt-get install -y chromium` (as root) to run it"
    ),
]


def chromium(url: str, profile: Path, *, screenshot: Path | None = None, budget_ms: int = 6000) -> str:
    """Load `url` headless; `budget_ms` of virtual time lets the UI poll /stats/requests a few times.
    Returns the rendered DOM (--dump-dom) or "" when taking a screenshot."""
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1400,900", f"--virtual-time-budget={budget_ms}",
    ]
    command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    result = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=90, start_new_session=True, check=False
    )
    assert result.returncode == 0, f"chromium failed on {url}: {result.stderr[-2000:]}"
    if screenshot:
        assert screenshot.exists() and screenshot.stat().st_size > 10_000, f"no real screenshot of {url}"
    return result.stdout


def page_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def template_args(page: str) -> dict:
    """`window.templateArgs = {...}` of the UI's page: what the React app starts from."""
    text = page.split("templateArgs = ", 1)[1].split("\n", 1)[0].strip().rstrip(";")
    return json.loads(text)


def checks_rows(base: str) -> list[dict]:
    stats = get_json(base + "/stats/requests")
    tables = {table["key"]: table["data"] for table in stats.get("extended_stats") or []}
    return tables.get(CHECKS_TAB, [])


def test_web_ui_shows_options_requests_and_live_then_final_checks(tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "chromium-profile"
    # duplicate=0.2: the embedded server sends a fifth of deliveries twice, so the Checks tab
    # has a FAIL to show while the run goes (a duplicate is proof at once; PASS waits for the end).
    env = {"SOCKETPROOF_JWT_SECRET": SENTINEL_SECRET, "SOCKETPROOF_FAULTS": "duplicate=0.2"}
    with web_ui(["-u", "10", "-r", "10", "--checks-report", str(tmp_path / "reports")], tmp_path / "locust.log",
                env) as base:
        # The start form: Socketproof's options with their defaults, the embedded server as host,
        # and no secret from the environment in the page (a default is visible in the page source).
        page = page_text(base + "/")
        args = template_args(page)
        options = args["extra_options"]
        assert {"ws_path", "jwt_secret", "identities", "tabs", "checks", "strict"} <= set(options), sorted(options)
        assert options["ws_path"]["default_value"] == "" and options["identities"]["default_value"] == 20
        assert options["jwt_secret"]["is_secret"] and options["jwt_secret"]["default_value"] == ""
        assert SENTINEL_SECRET not in page, "the JWT secret from the environment leaked into the web UI page"
        assert args["extended_tabs"] == [{"title": "Checks", "key": CHECKS_TAB}]
        form_dom = chromium(base + "/", profile, budget_ms=3000)
        assert "Custom parameters" in form_dom and "ws://127.0.0.1:" in form_dom, form_dom[:3000]
        chromium(base + "/", profile, screenshot=SHOTS / "webui-start-form.png", budget_ms=3000)

        # Start the run the way the form does (its host field holds the embedded server's URL).
        host = args["host"]
        assert host.startswith("ws://127.0.0.1:"), host
        started = post_form(base + "/swarm", {"user_count": 10, "spawn_rate": 10, "host": host, "ws_path": "/ws"})
        assert started["success"], started
        names = wait_until(
            lambda: {s["name"] for s in get_json(base + "/stats/requests")["stats"] if s["num_requests"]}
            >= {"connect", "echo", "publish"} and True,
            60, "connect, echo and publish in /stats/requests",
        )
        assert names
        live = wait_until(
            lambda: (rows := checks_rows(base)) and {r["check"]: r for r in rows}["duplicates"]["verdict"] == "FAIL"
            and rows,
            60, "a live duplicates FAIL in the Checks tab's data",
        )
        assert get_json(base + "/stats/requests")["state"] == "running", "the FAIL must show while the run goes"
        assert [row["check"] for row in live] == ["ordering", "duplicates", "loss", "cleanup", "heartbeat", "state"]
        assert {row["verdict"] for row in live} <= {"FAIL", "PENDING"}, live
        duplicates = {row["check"]: row for row in live}["duplicates"]
        assert duplicates["anomalies"] > 0 and duplicates["evidence"].startswith("duplicate"), duplicates
        stats_dom = chromium(base + "/", profile)
        assert "connect" in stats_dom and "echo" in stats_dom and "deliver" in stats_dom, stats_dom[-3000:]
        chromium(base + "/", profile, screenshot=SHOTS / "webui-statistics.png")
        live_dom = chromium(f"{base}/?tab={CHECKS_TAB}", profile)
        assert "PENDING" in live_dom and "FAIL" in live_dom and "First evidence" in live_dom, live_dom[-3000:]
        chromium(f"{base}/?tab={CHECKS_TAB}", profile, screenshot=SHOTS / "webui-checks-live.png")

        # Stop: the final verdicts replace the provisional ones, in the endpoint and in the tab.
        post_form(base + "/stop", {})
        final = wait_until(
            lambda: (rows := checks_rows(base)) and all(row["verdict"] in VERDICTS for row in rows) and rows,
            60, "final verdicts after /stop",
        )
        by_name = {row["check"]: row for row in final}
        assert by_name["duplicates"]["verdict"] == "FAIL" and by_name["ordering"]["verdict"] == "PASS", final
        checks_dom = chromium(f"{base}/?tab={CHECKS_TAB}", profile)
        for row in final:
            assert row["check"] in checks_dom and row["verdict"] in checks_dom, (row, checks_dom[-3000:])
        assert "First evidence" in checks_dom
        shot = SHOTS / "webui-checks.png"
        chromium(f"{base}/?tab={CHECKS_TAB}", profile, screenshot=shot)
        assert "<h2>Socketproof checks</h2>" in page_text(base + "/stats/report")
