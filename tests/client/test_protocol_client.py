"""ProtocolClient (the Client on the socketproof adapter) against the real reference server
(real sockets, real tokens), and its pure parts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client import (
    ConnectionClosed,
    HandshakeRejected,
    ProtocolClient,
    ProtocolError,
    State,
    Timeout,
    mint_token,
)
from client.adapter import ResumeInfo
from client.adapters.socketproof import SocketproofAdapter
from tests.client.support import FakeRecorder, FakeRequestEvent
from tests.support.server import ServerHandle, running_server

ROOT = Path(__file__).resolve().parents[2]

HEARTBEAT = {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.3}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(**HEARTBEAT) as handle:
        yield handle


def new_user() -> str:
    return "u-" + uuid.uuid4().hex[:10]


def connected(server: ServerHandle, user: str | None = None, **kwargs: Any) -> ProtocolClient:
    client = ProtocolClient(server.ws_url, token=mint_token(server.secret, user or new_user()), timeout=2.0, **kwargs)
    client.connect()
    return client


def test_connect_reads_welcome_and_snapshot(server: ServerHandle) -> None:
    user = new_user()
    with connected(server, user) as client:
        session = client.session
        assert session is not None and client.state is State.OPEN
        assert session.welcome["type"] == "welcome"
        assert session.welcome["user"] == client.user == user
        assert client.conn_id == session.welcome["conn_id"] is not None
        assert session.welcome["heartbeat"] == {"interval": 0.2, "timeout": 0.3}
        assert session.welcome["replay"] == 0 and session.welcome["resumed"] is False
        assert session.snapshot == {"type": "snapshot", "version": 0, "state": {}}
        assert session.replayed == []
        assert client.handshake_response is not None
        assert client.handshake_response.status == 101
        assert client.handshake_response.headers["sec-websocket-accept"]


def test_echo_and_ping_round_trip(server: ServerHandle) -> None:
    with connected(server) as client:
        data = {"nested": [1, "two", None, {"x": 3.5}], "unicode": "żółw ✓"}
        reply = client.echo(data)
        assert reply["type"] == "echo" and reply["data"] == data and isinstance(reply["ts"], int)
        pong = client.ping()
        assert pong["type"] == "pong" and pong["id"] != reply["id"]
        assert client.request({"type": "ping", "id": 42})["id"] == 42


def test_send_to_self_is_acked_and_pushed(server: ServerHandle) -> None:
    user = new_user()
    with connected(server, user) as client:
        ack = client.send(user, {"n": 1}, id="m-1")
        assert ack == {"type": "ack", "id": "m-1", "seq": 1, "queued": False}
        message = client.next_push(1.0)
        assert message == {"type": "message", "seq": 1, "from": user, "id": "m-1", "data": {"n": 1}}
        with pytest.raises(Timeout):
            client.next_push(0.05)


def test_queued_messages_are_replayed_on_connect(server: ServerHandle) -> None:
    sender, receiver = new_user(), new_user()
    with connected(server, sender) as client:
        assert [client.send(receiver, i)["queued"] for i in range(3)] == [True, True, True]
    fresh = connected(server, receiver)
    try:
        assert fresh.session is not None
        assert fresh.session.welcome["replay"] == 3
        assert [m["data"] for m in fresh.session.replayed] == [0, 1, 2]
        assert [m["seq"] for m in fresh.session.replayed] == [1, 2, 3]
    finally:
        fresh.close()
    resumed = ProtocolClient(server.ws_url, token=mint_token(server.secret, receiver), timeout=2.0)
    session = resumed.connect(last_seq=1)
    try:
        assert session.welcome["resumed"] is True
        assert [m["seq"] for m in session.replayed] == [2, 3]
    finally:
        resumed.close()


@pytest.mark.parametrize(
    ("token", "headers", "status", "code"),
    [
        ("garbage", {}, 401, "invalid_token"),
        ("wrong-secret", {}, 401, "invalid_token"),
        ("expired", {}, 401, "token_expired"),
        (None, {}, 401, "missing_token"),
        ("ok", {"Sec-WebSocket-Version": "12"}, 426, "unsupported_version"),
    ],
)
def test_rejected_handshake(
    server: ServerHandle, token: str | None, headers: dict[str, str], status: int, code: str
) -> None:
    tokens = {
        "wrong-secret": mint_token("not-the-secret", "alice"),
        "expired": mint_token(server.secret, "alice", ttl=-10),
        "ok": mint_token(server.secret, "alice"),
    }
    client = ProtocolClient(server.ws_url, token=tokens.get(token, token), headers=headers, timeout=2.0)
    with pytest.raises(HandshakeRejected) as caught:
        client.connect()
    assert (caught.value.status, caught.value.code) == (status, code)
    assert code in str(caught.value)
    assert client.state is State.CLOSED


def test_bad_last_seq_is_rejected(server: ServerHandle) -> None:
    client = ProtocolClient(server.ws_url, token=mint_token(server.secret, new_user()), timeout=2.0)
    with pytest.raises(HandshakeRejected) as caught:
        client.connect(query={"last_seq": "-1"})
    assert (caught.value.status, caught.value.code) == (400, "invalid_field")


def test_unreachable_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ProtocolClient(f"ws://127.0.0.1:{port}/ws", token="t", timeout=2.0)
    with pytest.raises(HandshakeRejected) as caught:
        client.connect()
    assert (caught.value.status, caught.value.code) == (0, "unreachable")


def test_error_replies_raise_and_the_connection_keeps_working(server: ServerHandle) -> None:
    with connected(server) as client:
        with pytest.raises(ProtocolError) as caught:
            client.request({"type": "no-such-type"})
        assert caught.value.code == "unknown_type"
        assert caught.value.frame["type"] == "error"
        assert client.update(0, {"a": 1})["version"] == 1
        with pytest.raises(ProtocolError) as caught:
            client.update(0, {"a": 2})
        assert caught.value.code == "version_conflict"
        assert caught.value.frame["current_version"] == 1
        client.send_raw("{not json")
        assert client.next_push(1.0)["code"] == "bad_json"
        client.send_raw(b"\x00binary")
        assert client.next_push(1.0)["code"] == "unsupported_frame"
        client.send_json({"type": "send", "to": "x", "data": 1})  # no id: the error matches no request
        error = client.next_push(1.0)
        assert (error["code"], error["field"]) == ("missing_field", "id")
        assert client.echo("still here")["data"] == "still here"


def test_state_sync_patch_and_refresh(server: ServerHandle) -> None:
    user = new_user()
    with connected(server, user) as first, connected(server, user) as second:
        ack = first.update(0, {"color": "red"})
        assert ack["version"] == 1
        patch = second.next_push(1.0)
        assert patch == {"type": "patch", "version": 1, "patch": {"color": "red"}}
        snapshot = second.sync()
        assert (snapshot["type"], snapshot["version"], snapshot["state"]) == ("snapshot", 1, {"color": "red"})
        new_token = mint_token(server.secret, user, ttl=120)
        assert first.refresh(new_token)["type"] == "refreshed"
        assert first.token == new_token
        with pytest.raises(ProtocolError) as caught:
            first.refresh(mint_token(server.secret, new_user()))
        assert caught.value.code == "wrong_user"


def test_answering_pings_keeps_the_connection_and_silence_gets_1008(server: ServerHandle) -> None:
    with connected(server) as client:
        time.sleep(0.8)  # > interval + timeout: would be closed if pongs were missing
        assert client.state is State.OPEN
        assert client.echo(1)["data"] == 1
        assert len(client.ping_times) >= 2
        client.answer_pings = False
        closed = client.wait_closed(1.5)
        assert (closed.code, closed.reason) == (1008, "heartbeat timeout")
        assert client.state is State.CLOSED
        with pytest.raises(ConnectionClosed):
            client.echo(2)


def test_close_is_a_clean_handshake(server: ServerHandle) -> None:
    recorder = FakeRecorder()
    client = connected(server, recorder=recorder)
    closed = client.close(1000, "bye")
    assert closed.code == 1000
    assert client.state is State.CLOSED
    assert client.wait_closed(0.1) is closed
    ((code, _reason, initiator, _t),) = recorder.named("closed")
    assert (code, initiator) == (1000, "client")
    with pytest.raises(ConnectionClosed):
        client.next_push(0.1)


def test_drop_ends_tcp_without_a_close_frame(server: ServerHandle) -> None:
    recorder = FakeRecorder()
    client = connected(server, recorder=recorder)
    client.drop()
    closed = client.wait_closed(0.5)
    assert closed.code is None
    assert recorder.named("closed") == [(None, "", "abrupt", recorder.named("closed")[0][3])]
    with pytest.raises(ConnectionClosed):
        client.ping()
    # the server notices within heartbeat.interval + heartbeat.timeout
    deadline = time.monotonic() + 1.5
    while server.stats()["connections"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.stats()["connections"] == 0


def test_reconnect_after_drop(server: ServerHandle) -> None:
    user = new_user()
    with connected(server, user) as client:
        first_conn = client.conn_id
        client.drop()
        client.connect()
        assert client.state is State.OPEN and client.conn_id != first_conn
        assert client.echo("again")["data"] == "again"


def test_request_timeout_then_late_reply_goes_to_the_inbox() -> None:
    with running_server(faults="delay_ms=200") as slow:  # every server frame 200 ms late
        client = ProtocolClient(slow.ws_url, token=mint_token(slow.secret, new_user()), timeout=2.0)
        client.connect()
        try:
            with pytest.raises(Timeout):
                client.echo("late", timeout=0.05)
            late = client.next_push(1.0)
            assert (late["type"], late["data"]) == ("echo", "late")
            assert client.state is State.OPEN
        finally:
            client.close()


def test_request_event_and_recorder_calls(server: ServerHandle) -> None:
    user = new_user()
    event, recorder = FakeRequestEvent(), FakeRecorder()
    client = ProtocolClient(
        server.ws_url, token=mint_token(server.secret, user), timeout=2.0, recorder=recorder, request_event=event
    )
    session = client.connect()
    reply = client.echo({"k": "v\u00e9\u2014"})  # non-ASCII: response_length counts bytes, not characters
    with pytest.raises(ProtocolError):
        client.request({"type": "bogus"}, name="custom-name")
    time.sleep(0.3)  # at least one server ping
    client.close()

    connect, echo, bogus = event.fired
    assert (connect["request_type"], connect["name"], connect["exception"]) == ("WS", "connect", None)
    assert echo["name"] == "echo" and echo["exception"] is None
    assert 0 < echo["response_time"] < 2000
    assert echo["response_length"] == len(json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode())
    assert bogus["name"] == "custom-name"
    assert isinstance(bogus["exception"], ProtocolError) and "unknown_type" in str(bogus["exception"])

    names = [name for name, _ in recorder.calls]
    assert names[:3] == ["opened", "subscribed", "state"]  # the start-up's snapshot is recorded once opened
    t_opened, *info = recorder.calls[0][1]
    assert dict(info) == {
        "conn_id": session.welcome["conn_id"], "channels": (user,), "heartbeat": (0.2, 0.3),
        "resume": ResumeInfo(requested=None, server_last=0, replay=0, resumed=False, gap=None),
        "capabilities": SocketproofAdapter.capabilities,
    }
    assert recorder.named("subscribed")[0][0] == user
    assert recorder.named("state")[0][:5] == ("snapshot", 0, {}, None, None)
    assert recorder.named("frame") == [("out", "echo"), ("out", "custom-name")]
    assert [args[0] for args in recorder.named("error")] == ["unknown_type"]
    assert recorder.named("keepalive")  # the server's WebSocket pings
    assert names[-1] == "closed" and recorder.named("closed")[0][:3] == (1000, "", "client")
    times = [t_opened] + [args[-1] for name, args in recorder.calls[1:] if name != "frame"]
    assert times == sorted(times)


def test_no_request_event_means_nothing_is_fired(server: ServerHandle) -> None:
    with connected(server) as client:
        assert client.request_event is None
        assert client.echo(1)["data"] == 1  # would raise AttributeError if it tried to fire


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import os, sys, gevent
    from locust.env import Environment
    from client import ProtocolClient, ProtocolError, mint_token

    url, secret = os.environ["WS_URL"], os.environ["SECRET"]
    env = Environment()
    runner = env.create_local_runner()  # the runner is what feeds request events into env.stats
    clients = [
        ProtocolClient(url, token=mint_token(secret, f"g{i}"), timeout=2.0, request_event=env.events.request)
        for i in range(3)
    ]
    for c in clients:
        c.connect()

    def work(c):
        for i in range(50):
            assert c.echo(i)["data"] == i
        me = c.user
        c.send(me, "hi")
        assert c.next_push(1.0)["data"] == "hi"

    gevent.joinall([gevent.spawn(work, c) for c in clients], timeout=5, raise_error=True)
    try:
        clients[0].request({"type": "bogus"})
    except ProtocolError:
        pass
    echo, errors = env.stats.get("echo", "WS"), list(env.stats.errors.values())
    print("locust", echo.num_requests, echo.num_failures, env.stats.get("connect", "WS").num_requests,
          [(e.name, e.occurrences, "unknown_type" in str(e.error)) for e in errors])
    clients[0].close(); clients[1].drop()
    clients[2].answer_pings = False
    runner.quit()
    print("codes", clients[0].wait_closed(1).code, clients[1].wait_closed(1).code, clients[2].wait_closed(1.5).code)
    """
)


def test_works_under_gevent_and_reports_to_locust_stats(server: ServerHandle) -> None:
    env = {**os.environ, "WS_URL": server.ws_url, "SECRET": server.secret, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", GEVENT_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=15
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["locust 150 0 3 [('bogus', 1, True)]", "codes 1000 None 1008"]


GEVENT_WAIT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import os, time, gevent
    from client import ConnectionClosed, ProtocolClient, Timeout, mint_token

    url, secret = os.environ["WS_URL"], os.environ["SECRET"]  # the server delays every frame 0.3 s
    client = ProtocolClient(url, token=mint_token(secret, "gw"), timeout=2.0)
    client.connect()
    out = []

    t0 = time.monotonic()
    try:
        client.echo("late", timeout=0.1)
    except Timeout:
        out.append("timeout %.1f" % (time.monotonic() - t0))
    waiter = gevent.spawn(client.echo, "killed")  # killed mid-wait: its late reply wakes nobody
    gevent.sleep(0.05)
    waiter.kill()
    beats = []
    ticker = gevent.spawn(lambda: [beats.append(gevent.sleep(0.01)) for _ in range(60)])
    out.append("echo " + client.echo("ok")["data"])  # the late replies arrive meanwhile: pushes
    ticker.join(2)
    out.append("pushes " + " ".join(sorted(m["data"] for m in client.drain_pushes())))
    out.append("ticker %d" % len(beats))

    pending = gevent.spawn(client.echo, "dropped")
    gevent.sleep(0.05)
    t0 = time.monotonic()
    client.drop()
    try:
        pending.get(timeout=1)
    except ConnectionClosed:
        out.append("closed %.1f" % (time.monotonic() - t0))
    print(" | ".join(out))
    """
)


def test_waiting_under_gevent_times_out_wakes_on_close_and_survives_kills() -> None:
    with running_server(faults="delay_ms=300") as delayed:
        env = {**os.environ, "WS_URL": delayed.ws_url, "SECRET": delayed.secret, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", GEVENT_WAIT_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=15
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "timeout 0.1 | echo ok | pushes late | ticker 60 | closed 0.0"


def test_origin_is_sent_only_when_asked() -> None:
    with running_server(allowed_origins="http://good.example") as guarded:
        token = mint_token(guarded.secret, new_user())
        with pytest.raises(HandshakeRejected) as caught:
            ProtocolClient(guarded.ws_url, token=token, timeout=2.0).connect(origin="http://evil.example")
        assert (caught.value.status, caught.value.code) == (403, "origin_not_allowed")
        with pytest.raises(HandshakeRejected) as caught:
            ProtocolClient(guarded.ws_url, token=token, timeout=2.0).connect()  # no Origin header at all
        assert caught.value.code == "origin_not_allowed"
        with ProtocolClient(guarded.ws_url, token=token, timeout=2.0) as client:
            client.connect(origin="http://good.example")
            assert client.echo("ok")["data"] == "ok"


def test_ids_are_unique_within_and_across_clients() -> None:
    first = ProtocolClient("ws://127.0.0.1:1/ws", token="t")
    second = ProtocolClient("ws://127.0.0.1:1/ws", token="t")
    ids = [first.next_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(isinstance(i, str) for i in ids)
    assert not set(ids) & {second.next_id() for _ in range(1000)}


def test_user_without_token_gets_a_minted_token() -> None:
    assert ProtocolClient("ws://h:1", user="alice").token
    assert ProtocolClient("ws://h:1").token is None
