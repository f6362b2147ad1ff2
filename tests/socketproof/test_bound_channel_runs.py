"""Channels bound to the connection (issue 26): the Django Channels tutorial chat, which puts the
room in the URL, under real `locust --headless` runs with the adapter docs/examples ships.

Before BOUND_CHANNEL the flows published to peers' rooms, which a connection cannot reach: a
clean server failed loss (128 `lost` anomalies in 20 s at 20 users). Now a clean run passes
ordering, duplicates and loss with no `lost` anomaly, and the fault proxy's drop and duplicate
in front of daphne are each caught.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.channels_chat import running_app
from tests.socketproof.support import LocustRun, run_locust

ADAPTER = "docs/examples/channels_chat_adapter.py:ChannelsChatAdapter"


def run_against(url: str, report_dir: Path, *extra: str, users: int = 20, seconds: int = 12) -> LocustRun:
    """`url` is the app's http://127.0.0.1:PORT: the tutorial checks the Origin, so it is sent."""
    return run_locust(["--protocol", ADAPTER, "--host", url.replace("http://", "ws://"), "--origin", url,
                       "--users", str(users), "--spawn-rate", "25", "--run-time", f"{seconds}s", *extra], report_dir)


def test_a_clean_run_at_50_users_over_30_s_passes_with_no_lost_anomaly(tmp_path: Path) -> None:
    with running_app() as app:
        run = run_against(app.url, tmp_path, users=50, seconds=30)
    assert run.returncode == 0, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.failing())
    assert "lost" not in run.anomaly_kinds("loss")
    assert run.stats["publish"]["num_requests"] > 500 and run.stats["deliver"]["num_requests"] > 1000
    assert not run.leftovers


@pytest.mark.parametrize(("fault", "check", "kind"),
                         [("down:drop=0.1", "loss", "lost"), ("down:duplicate=0.1", "duplicates", "duplicate_stamp")])
def test_drop_and_duplicate_in_front_of_daphne_are_caught(tmp_path: Path, fault: str, check: str, kind: str) -> None:
    with running_app() as app:
        run = run_against(app.url, tmp_path, "--proxy-faults", fault, "--proxy-seed", "5")
    assert run.returncode == 1, run.describe()
    assert run.verdicts[check]["valid"] is False and kind in run.anomaly_kinds(check), run.failing()
    assert not run.leftovers


def test_without_origin_the_pre_flight_names_the_option(tmp_path: Path) -> None:
    """The tutorial refuses an upgrade without an allowed Origin (403): one line naming --origin, exit 2."""
    with running_app() as app:
        run = run_locust(["--protocol", ADAPTER, "--host", app.url.replace("http://", "ws://"), "--users", "2",
                          "--run-time", "5s"], tmp_path)
    lines = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert run.returncode == 2 and len(lines) == 1 and "HTTP 403" in lines[0] and "--origin" in lines[0], run.describe()
    assert "Traceback" not in run.stderr and not run.leftovers
