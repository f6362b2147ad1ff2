"""`--host`: a run against a separately started reference server, and against a port with nothing on it."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator

import pytest

from client.tokens import mint_admin_token
from server.process import ServerProcess
from tests.socketproof.support import EMBEDDED_LOG, RunPool

SECRET = "socketproof-development-secret-change-me"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """The reference server with the embedded run's short heartbeat, so every check has evidence."""
    child = ServerProcess({"heartbeat_interval": 2, "heartbeat_timeout": 2, "jwt_secret": SECRET})
    child.start(15)
    try:
        yield child
    finally:
        assert child.stop(10) == 0, "".join(child.output)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool, server: ServerProcess) -> RunPool:
    host = server.ws_url.rsplit("/ws", 1)[0]
    locust_runs.start("host-server", ["-u", "20", "-r", "20", "-t", "8s", "--host", host])
    locust_runs.start("host-nothing", ["-u", "5", "-r", "5", "-t", "4s", "--host", f"ws://127.0.0.1:{free_port()}"])
    return locust_runs


def server_stats(server: ServerProcess) -> dict:
    request = urllib.request.Request(server.http_url + "/stats")
    request.add_header("Authorization", f"Bearer {mint_admin_token(SECRET, ttl=60)}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_host_run_uses_the_given_server_and_starts_none(runs: RunPool, server: ServerProcess) -> None:
    run = runs.result("host-server")
    assert run.returncode == 0, run.describe()
    assert EMBEDDED_LOG not in run.stderr, run.describe()
    assert run.checks["host"] == server.ws_url.rsplit("/ws", 1)[0]
    assert run.checks["valid"] is True, run.failing()
    assert all(entry["num_failures"] == 0 for entry in run.stats.values())
    stats = server_stats(server)
    assert stats["messages_in"] >= sum(entry["num_requests"] for name, entry in run.stats.items()
                                       if name in ("echo", "ping", "send"))
    assert stats["connections"] == 0, "the run closed every connection it opened on our server"
    assert not run.leftovers


def test_host_with_nothing_listening_stops_at_the_preflight_without_traceback(runs: RunPool) -> None:
    """The pre-flight connection (socketproof/target/preflight.py) fails: one line, exit 2, no user starts.
    (tests/user/test_user_errors.py covers the other wrong targets.)"""
    run = runs.result("host-nothing")
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    assert EMBEDDED_LOG not in run.stderr
    assert run.seconds < 4 + 30, "a 4 s run must not hang on a dead host"
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "connection refused; is the server running? (check --host)" in errors[0], errors
    assert not (run.report_dir / "checks.json").exists(), "no user may start against a dead host"
    assert not run.leftovers
