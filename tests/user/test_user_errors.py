"""The mistakes a user makes first, and the one line each gets: what is wrong and what to do.

Every case is the real `locust` (or `python -m server`) command line; each must exit 2 with a
single `error:` line, no traceback, before any user starts (no checks.json), and quickly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.socketproof.support import ROOT, LocustRun, clean_environment, run_locust
from tests.support.server import running_server
from tests.user.support import free_port, plain_http_server

QUICK = ["-u", "2", "-r", "2", "-t", "3s"]
"""If a mistake got past the pre-flight, this run would end by itself with exit 0 or 1."""
SERVER_SECRET = "the-servers-own-secret-not-the-default-0123456789"


def assert_one_error_line(run: LocustRun, *parts: str) -> str:
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, run.describe()
    for part in parts:
        assert part in errors[0], (part, errors[0])
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    assert not (run.report_dir / "checks.json").exists(), "no user may start"
    assert run.seconds < 60, "a wrong target must be reported at once, not after the run"
    assert not run.leftovers
    return errors[0]


@pytest.fixture(scope="module")
def other_secret_server() -> Iterator[str]:
    with running_server(jwt_secret=SERVER_SECRET) as server:
        yield server.ws_url.rsplit("/ws", 1)[0]


def test_nothing_listening(tmp_path: Path) -> None:
    port = free_port()
    run = run_locust([*QUICK, "--host", f"ws://127.0.0.1:{port}"], tmp_path)
    line = assert_one_error_line(run, f"cannot reach ws://127.0.0.1:{port}/ws: connection refused", "--host")
    assert line.startswith("locust: error: "), line


def test_a_plain_http_server_is_not_a_websocket_endpoint(tmp_path: Path) -> None:
    with plain_http_server() as url:
        run = run_locust([*QUICK, "--host", url], tmp_path)
    assert_one_error_line(run, f"{url}/ws is not a WebSocket endpoint (HTTP 404)", "--host", "--ws-path")


def test_a_wrong_secret_is_named(tmp_path: Path, other_secret_server: str) -> None:
    run = run_locust([*QUICK, "--host", other_secret_server], tmp_path)
    assert_one_error_line(run, "rejected the handshake (401 invalid_token)", "check --jwt-secret")


def test_the_right_secret_from_the_environment_runs(tmp_path: Path, other_secret_server: str) -> None:
    """The fix the wrong-secret line points to works: the same run with $SOCKETPROOF_JWT_SECRET."""
    run = run_locust([*QUICK, "--host", other_secret_server], tmp_path, env={"SOCKETPROOF_JWT_SECRET": SERVER_SECRET})
    assert run.returncode in (0, 1), run.describe()
    assert run.checks["connections"] > 0, run.describe()
    assert all(entry["num_failures"] == 0 for name, entry in run.stats.items() if name == "connect"), run.describe()


def test_a_host_with_the_path_in_it_is_the_whole_url(tmp_path: Path, other_secret_server: str) -> None:
    """`--host ws://h:p/ws` (a whole URL) is used as it is; `--ws-path` on top of it is the mistake."""
    run = run_locust([*QUICK, "--host", other_secret_server + "/ws"], tmp_path,
                     env={"SOCKETPROOF_JWT_SECRET": SERVER_SECRET})
    assert run.returncode == 0, run.describe()
    run = run_locust([*QUICK, "--host", other_secret_server + "/ws", "--ws-path", "/ws"], tmp_path / "twice",
                     env={"SOCKETPROOF_JWT_SECRET": SERVER_SECRET})
    assert_one_error_line(run, "/ws/ws not found (404): give --host without the path", other_secret_server)


def test_a_host_without_a_scheme(tmp_path: Path) -> None:
    run = run_locust([*QUICK, "--host", "localhost:8765"], tmp_path)
    assert_one_error_line(run, "--host must be a URL like ws://host:port, got 'localhost:8765'")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--identities", "0"], "--identities must be between 1 and 1000000, got 0"),
        (["--ws-path", "ws"], "--ws-path must start with '/'"),
        (["--checks", "ordering,speed"], "unknown check 'speed' in --checks"),
    ],
    ids=["identities-0", "ws-path-without-slash", "unknown-check"],
)
def test_a_bad_option_value(tmp_path: Path, argv: list[str], message: str) -> None:
    assert_one_error_line(run_locust([*QUICK, *argv], tmp_path), "locust: error: " + message)


def shadowing(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment where importing `module` fails as if it were not installed."""
    fake = tmp_path / "not-installed"
    fake.mkdir(exist_ok=True)
    (fake / f"{module}.py").write_text(f"raise ModuleNotFoundError({'No module named ' + module!r}, name={module!r})\n")
    return clean_environment({"PYTHONPATH": str(fake)})


@pytest.mark.parametrize(("module", "package"), [("websocket", "websocket-client"), ("jwt", "PyJWT"),
                                                 ("junitparser", "junitparser")])
def test_locust_without_a_requirement(tmp_path: Path, module: str, package: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "locust"), "--headless", *QUICK],
        cwd=ROOT, env=shadowing(tmp_path, module), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [errors[0]] and errors[0].startswith("locust: error: the package " + package), result.stderr
    assert "pip install -r requirements.txt" in errors[0]


def test_server_without_gevent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "0"],
        cwd=ROOT, env=shadowing(tmp_path, "gevent"), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"python -m server: error: the package gevent is not installed for {sys.executable}: "
        "run `pip install -r requirements.txt` with that Python's pip (README: Run it)"
    ]
