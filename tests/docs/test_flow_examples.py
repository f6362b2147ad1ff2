"""docs/flows.md's example locustfiles, run as a user would (issue 26): copied into a folder
outside the repository, `python -m locust -f <file>` from there with this project installed in
the venv (requirements.txt installs it editable), against real servers; a clean run exits 0 and
a server that drops, duplicates or reorders exits 1 with evidence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apps.socketio_app import running_app as socketio_app
from tests.socketproof.support import ROOT, LocustRun, run_locust

EXAMPLES = ROOT / "docs" / "examples" / "locustfiles"


def users_folder(tmp_path: Path, example: str) -> Path:
    """A user's own project folder, outside this repository, holding only their locustfile."""
    folder = tmp_path / "my-service"
    folder.mkdir()
    shutil.copy(EXAMPLES / example, folder / "locustfile.py")
    assert ROOT not in folder.parents
    return folder


def trader_run(tmp_path: Path, app_url: str, secret: str, seconds: int = 12) -> LocustRun:
    folder = users_folder(tmp_path, "trader.py")
    return run_locust(["-f", "locustfile.py", "--protocol", "socketio", "--host", app_url.replace("http", "ws"),
                       "--jwt-secret", secret, "--users", "20", "--spawn-rate", "20", "--run-time", f"{seconds}s",
                       "--web-host", "127.0.0.1"], folder / "reports", cwd=folder)


def test_the_trader_runs_from_its_own_folder_and_passes_on_a_clean_server(tmp_path: Path) -> None:
    with socketio_app() as app:
        run = trader_run(tmp_path, app.url, app.secret)
    assert run.returncode == 0, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.failing())
    assert run.stats["publish"]["num_requests"] > 20 and run.stats["deliver"]["num_requests"] > 20
    assert run.stats["subscribe"]["num_requests"] >= 20 * 12
    assert not run.leftovers


@pytest.mark.parametrize(("switch", "check", "kind"), [
    ({"drop_every": 5}, "loss", "lost"),
    ({"duplicate_every": 5}, "duplicates", "duplicate_stamp"),
    ({"reorder_every": 3}, "ordering", "fifo"),
])
def test_the_trader_catches_what_the_server_breaks(tmp_path: Path, switch: dict[str, int], check: str,
                                                   kind: str) -> None:
    with socketio_app(**switch) as app:
        run = trader_run(tmp_path, app.url, app.secret)
    assert run.returncode == 1, run.describe()
    assert run.verdicts[check]["valid"] is False and kind in run.anomaly_kinds(check), run.failing()
    assert not run.leftovers
