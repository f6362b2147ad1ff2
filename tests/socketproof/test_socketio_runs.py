"""`locust --protocol socketio` against a real python-socketio server (apps/socketio_app.py):
a clean run passes with true emit times, each broken-broadcast switch fails the check it breaks,
and a wrong secret, a server that is not Socket.IO, or an app without the `echo` event or with its
join event named otherwise ends the run at the pre-flight (exit 2, one line naming the option).

One run at a time (each is Locust plus the app on a 2-core machine); the app is stopped after
each run and must leave nothing behind (apps/app_child.py `running_child`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.socketio_app import AppHandle, running_app
from tests.socketproof.support import LocustRun, run_locust

HEARTBEAT = {"ping_interval": 1, "ping_timeout": 2}
"""Engine.IO pings every second, so a 10 s run sees several and judges them."""


def socketio_args(app: AppHandle, secret: str | None = None) -> list[str]:
    return [
        "-f", "locustfiles", "-t", "10s", "-u", "10", "-r", "10", "--stop-timeout", "5",
        "--protocol", "socketio", "--host", app.url, "--jwt-secret", secret or app.secret,
        "--server-connections", f"{app.metrics_url}#socketio_connected",
    ]


def socketio_run(tmp_path: Path, name: str, secret: str | None = None, extra: tuple[str, ...] = (),
                 **switches: float | bool | str) -> LocustRun:
    with running_app(**HEARTBEAT, **switches) as app:
        run = run_locust([*socketio_args(app, secret), *extra], tmp_path / name)
        assert not run.leftovers, run.describe()
        if run.returncode != 2:
            app.wait_connected(0)  # every user's connection closed at the end
    return run


def mean_ms(run: LocustRun, name: str) -> float:
    entry = run.stats[name]
    assert entry["num_requests"] > 0, entry
    return entry["total_response_time"] / entry["num_requests"]


def test_clean_run_passes_with_true_emit_times(tmp_path: Path) -> None:
    run = socketio_run(tmp_path, "clean")
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    verdicts = run.verdicts
    for check in ("ordering", "duplicates", "loss", "heartbeat", "cleanup"):
        assert verdicts[check]["valid"] is True, (check, verdicts[check], run.describe())
    assert verdicts["state"]["valid"] == "unknown"
    # Emits with an ack are timed to their ack, never reported as 0 ms.
    for name in ("echo", "publish", "subscribe", "connect"):
        assert mean_ms(run, name) > 0, (name, run.stats[name])
    assert run.stats["deliver"]["num_requests"] > 0
    assert run.returncode == 0, run.describe()


@pytest.mark.parametrize(
    ("switch", "check", "kind"),
    [
        ("drop_every", "loss", "lost"),
        ("duplicate_every", "duplicates", "duplicate_stamp"),
        ("reorder_every", "ordering", "fifo"),
    ],
)
def test_broken_room_broadcasts_fail_the_check_with_evidence(tmp_path: Path, switch: str, check: str,
                                                             kind: str) -> None:
    run = socketio_run(tmp_path, switch, **{switch: 7})
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts[check]
    assert verdict["valid"] is False, verdict
    assert kind in run.anomaly_kinds(check), verdict
    first = verdict["anomalies"][0]
    assert first["message"] and first["evidence"], first
    assert any(line.split()[:2] == [check, "FAIL"] for line in run.stdout.splitlines()), run.stdout


def error_lines(run: LocustRun) -> list[str]:
    return [line for line in (run.stdout + run.stderr).splitlines() if "error" in line.lower()]


def test_wrong_secret_is_one_preflight_line_with_the_connect_error(tmp_path: Path) -> None:
    run = socketio_run(tmp_path, "wrong-secret", secret="not-the-apps-secret-but-as-long-as-it")
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr
    [line] = error_lines(run)
    assert "CONNECT_ERROR" in line and "invalid token: Signature verification failed" in line, line


def test_a_server_that_is_not_socketio_is_one_line(tmp_path: Path) -> None:
    run = socketio_run(tmp_path, "plain", plain=True)
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr
    [line] = error_lines(run)
    assert "not a Socket.IO server" in line, line


def preflight_refusal(run: LocustRun) -> str:
    """Exit 2 before any user started, within seconds, with one error line and no traceback."""
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    assert not (run.report_dir / "checks.json").exists(), "the run must stop before any user starts"
    [line] = error_lines(run)
    assert line.startswith("locust: error: "), line
    return line


def test_an_app_without_echo_is_one_line_naming_the_echo_option_within_seconds(tmp_path: Path) -> None:
    """Issue 26: the official Node socket.io server has no `echo` event; the README's command used to
    time out every echo after 10 s (exit 1). Now the pre-flight tries one and says what to set."""
    run = socketio_run(tmp_path, "no-echo", no_echo=True)
    line = preflight_refusal(run)
    assert "no answer to the pre-flight's echo within 3s: check --socketio-echo-event (the event your server " \
           "answers with an ack; '' to measure with publishes instead)" in line, line
    assert run.seconds < 15, run.describe()  # Locust's start-up, one 3 s echo, and out


def test_with_the_echo_event_emptied_the_same_app_runs_and_passes(tmp_path: Path) -> None:
    run = socketio_run(tmp_path, "no-echo-cleared", extra=("--socketio-echo-event", ""), no_echo=True)
    assert run.returncode == 0, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.failing())
    assert "echo" not in run.stats and run.stats["publish"]["num_failures"] == 0, run.stats.keys()


def test_a_join_event_named_otherwise_is_one_line_naming_the_join_option(tmp_path: Path) -> None:
    run = socketio_run(tmp_path, "join-enter", join_event="enter")
    line = preflight_refusal(run)
    assert "no answer to joining room 'socketproof-preflight-" in line and line.endswith(
        "check --socketio-join-event (the event your server joins a room on, with an ack; arg: the room)"), line
