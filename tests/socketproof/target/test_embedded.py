"""socketproof/target/embedded.py: the reference server a run gets when no --host is given.

Real child servers, a real Locust Environment and runner, the real client to talk to them;
no process may outlive the test (psutil lists this process's children)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psutil
import pytest
from locust.env import Environment
from locust.user import User

from client import HandshakeRejected, ProtocolClient, mint_token
from socketproof.target import embedded

SECRET = "test-embedded-secret-of-32-bytes-or-more"
OTHER_SECRET = "another-secret-also-32-bytes-long-ok"


class Idle(User):
    """A user class for the Environment; never spawned."""


def children() -> set[int]:
    """Pids of this process's live child processes (zombies excluded)."""
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def echo(host: str, secret: str) -> object:
    """One echo round trip as user `alice`, token signed with `secret`."""
    with ProtocolClient(host + "/ws", token=mint_token(secret, "alice"), user="alice", timeout=5) as c:
        c.connect()
        return c.echo("hi")["data"]


@pytest.fixture
def local_env() -> Iterator[Environment]:
    env = Environment(user_classes=[Idle])
    env.create_local_runner()
    before = children()
    try:
        yield env
    finally:
        embedded.stop()
        env.runner.quit()  # type: ignore[union-attr]
    assert children() <= before, "a child process outlived the test"


def test_settings_are_a_short_heartbeat_then_the_users_environment_then_the_runs_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert embedded.embedded_settings(SECRET) == {**embedded.EMBEDDED_DEFAULTS, "jwt_secret": SECRET}
    monkeypatch.setenv("SOCKETPROOF_HEARTBEAT_INTERVAL", "7")
    monkeypatch.setenv("SOCKETPROOF_FAULTS", "drop=0.1")
    monkeypatch.setenv("SOCKETPROOF_JWT_SECRET", "from-the-environment")
    monkeypatch.setenv("SOCKETPROOF_NOT_A_SETTING", "x")
    assert embedded.embedded_settings(SECRET) == {
        "heartbeat_interval": "7", "heartbeat_timeout": 2.0, "faults": "drop=0.1", "jwt_secret": SECRET}


def test_a_given_host_starts_nothing(local_env: Environment) -> None:
    local_env.host = "ws://127.0.0.1:9"
    before = children()
    assert embedded.start_if_no_host(local_env, SECRET) is None
    assert local_env.host == "ws://127.0.0.1:9" and embedded.host() is None and children() == before
    with pytest.raises(RuntimeError, match="no embedded reference server"):
        embedded.restart()


def test_start_restart_on_the_same_port_and_stop_at_quitting(local_env: Environment) -> None:
    before = children()
    host = embedded.start_if_no_host(local_env, SECRET)
    assert host is not None and local_env.host == host and embedded.host() == host
    url = urlsplit(host)
    assert (url.scheme, url.hostname, url.path) == ("ws", "127.0.0.1", "")
    first = children() - before
    assert len(first) == 1, "one reference server child"
    assert echo(host, SECRET) == "hi"
    with pytest.raises(HandshakeRejected):  # the run's secret, not the default, signs its tokens
        echo(host, OTHER_SECRET)

    ws_url = embedded.restart()
    assert ws_url == host + "/ws" and embedded.host() == host  # same port
    second = children() - before
    assert len(second) == 1 and second != first, "the old server ended, a new one took its port"
    assert echo(host, SECRET) == "hi"

    local_env.events.quitting.fire(environment=local_env)  # Locust quitting stops it
    assert embedded.host() is None
    assert children() == before and refused(url.port or 0)
    with pytest.raises(RuntimeError, match="no embedded reference server"):
        embedded.restart()


def test_a_server_refusing_after_start_is_waited_for_before_the_run_starts(
    local_env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKETPROOF_FAULTS", "refuse_after_start=1s")  # meant for restarts (--disrupt)
    t0 = time.monotonic()
    host = embedded.start_if_no_host(local_env, SECRET)
    assert time.monotonic() - t0 >= 1.0
    assert host is not None and echo(host, SECRET) == "hi"
