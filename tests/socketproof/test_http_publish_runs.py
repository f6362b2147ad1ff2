"""--publish-url on a real feed (issue 26, 3a): the users publish through the backend's HTTP API
(apps/feed_app.py's POST /api/notify, with its bearer token) while their WebSocket connections
listen, so the stamps travel the real path and loss is exact: clean, loss passes; frames dropped
on the WebSocket side (the fault proxy in front of the feed) are `lost`."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.feed_app import running_app as feed_app
from tests.socketproof.support import ROOT, run_locust

ADAPTER = str(ROOT / "docs" / "examples" / "feed_adapter.py") + ":FeedAdapter"
TOKEN = "feed-api-token-0123456789"


@pytest.mark.parametrize(("extra", "valid"), [((), True), (("--proxy-faults", "down:drop=0.1"), False)])
def test_publishing_through_the_backend_makes_loss_exact(tmp_path: Path, extra: tuple[str, ...], valid: bool) -> None:
    with feed_app(api_token=TOKEN, channels="1", interval=1.0) as feed:
        run = run_locust(["--protocol", ADAPTER, "--host", feed.url.replace("http://", "ws://"),
                          "--publish-url", feed.url + "/api/notify", "--header", f"Authorization: Bearer {TOKEN}",
                          "--users", "12", "--spawn-rate", "12", "--run-time", "10s", *extra], tmp_path)
    assert run.stats["publish"]["num_requests"] > 20 and run.stats["publish"]["num_failures"] == 0, run.describe()
    assert run.verdicts["loss"]["valid"] is valid, run.failing()
    if not valid:
        assert run.returncode == 1 and "lost" in run.anomaly_kinds("loss")
    else:
        assert run.returncode == 0, run.describe()
        assert run.stats["deliver"]["num_requests"] > 20
    assert TOKEN not in run.stdout + run.stderr  # a credential header is redacted
    assert not run.leftovers
