"""docs/examples/locustfiles/dashboard.py run as a user would (issue 26): from a folder outside
the repository, against a real feed whose backend publishes on a timer (apps/feed_app.py,
Starlette), judged by subscriber agreement alone: clean exit 0; a dropping, duplicating and
reordering feed each exit 1 with evidence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apps.feed_app import running_app as feed_app
from tests.socketproof.support import ROOT, LocustRun, run_locust

ADAPTER = str(ROOT / "docs" / "examples" / "feed_adapter.py") + ":FeedAdapter"
CHANNELS = {"FEED_CHANNELS": "feed-0,feed-1"}


def dashboard_run(tmp_path: Path, url: str, *extra: str, users: int = 30) -> LocustRun:
    folder = tmp_path / "my-dashboard"
    folder.mkdir()
    shutil.copy(ROOT / "docs" / "examples" / "locustfiles" / "dashboard.py", folder / "locustfile.py")
    return run_locust(["-f", "locustfile.py", "--protocol", ADAPTER, "--host", url.replace("http://", "ws://"),
                       "--users", str(users), "--spawn-rate", "30", "--run-time", "10s", *extra],
                      folder / "reports", env=CHANNELS, cwd=folder)


def test_a_clean_feed_passes_agreement(tmp_path: Path) -> None:
    with feed_app(channels="2") as feed:
        run = dashboard_run(tmp_path, feed.url)
    assert run.returncode == 0, run.describe()
    agreement = run.verdicts["agreement"]
    assert agreement["valid"] is True and agreement["stats"]["channels_judged"] == 2, agreement
    assert run.stats["connect"]["num_failures"] == 0 and not run.leftovers


@pytest.mark.parametrize(("switch", "extra", "kind"), [
    ({"drop_for_one": 3}, (), "missed"),
    ({"duplicate_every": 5}, (), "duplicate"),
    ({"channels": "1"}, ("--proxy-faults", "down:reorder=0.2", "--proxy-seed", "3"), "order"),
])
def test_a_broken_feed_fails_agreement_with_evidence(tmp_path: Path, switch: dict[str, int], extra: tuple[str, ...],
                                                      kind: str) -> None:
    with feed_app(**{"channels": "2", **switch}) as feed:  # one channel for reorder: swapped neighbours share it
        run = dashboard_run(tmp_path, feed.url, *extra)
    assert run.returncode == 1, run.describe()
    assert run.verdicts["agreement"]["valid"] is False and kind in run.anomaly_kinds("agreement"), run.failing()
    assert not run.leftovers
