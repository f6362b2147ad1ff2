"""Core test 4: however a connection ends, the server forgets it (connections, users, registry)."""

from __future__ import annotations

import time

import pytest

from client import ConnectionClosed, HandshakeRejected, ProtocolClient, State, mint_token
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import CLIENT_TIMEOUT, Baseline, Clients, is_embedded, new_user

CYCLES = 50


def assert_nothing_left(server: ServerHandle) -> None:
    """On our own embedded server (nobody else connected) forgotten means no connection, user or entry at all."""
    if is_embedded(server):
        server.wait_stats(connections=0, users=0, registry_entries=0)


def test_clean_close_returns_to_baseline(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user = new_user()
    tabs = [clients.open(user) for _ in range(3)]
    during = baseline.wait_delta("connections", 3)
    assert during["users"] - baseline.stats["users"] == 1
    assert during["registry_entries"] - baseline.stats["registry_entries"] == 4  # 3 connections + 1 user set
    for tab in tabs:
        closed = metrics.timed(tab.close)
        assert closed.code == 1000 and tab.state is State.CLOSED
    baseline.assert_restored()
    assert_nothing_left(server)


def test_abrupt_drop_returns_to_baseline(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user = new_user()
    tabs = [clients.open(user) for _ in range(3)]
    baseline.wait_delta("connections", 3)
    t0 = time.perf_counter()
    for tab in tabs:
        tab.drop()  # TCP ends with no close frame
        assert tab.wait_closed(1.0).code is None
    baseline.assert_restored()
    metrics.rtt((time.perf_counter() - t0) * 1000.0)  # drop -> server forgot them
    assert_nothing_left(server)


def test_many_open_close_cycles_leave_no_growth(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user = new_user()
    conn_ids = set()
    with metrics.measure(CYCLES):
        for i in range(CYCLES):  # one user, so a leaked slot also hits the per-user limit
            # a fresh client per cycle: reusing one right after drop() races in ProtocolClient.connect()
            client = clients.make(user)
            metrics.timed(client.connect)
            conn_ids.add(client.conn_id)
            assert client.ping()["type"] == "pong"
            if i % 2:
                client.drop()
            else:
                assert client.close().code == 1000
            if i % 10 == 9:
                baseline.assert_restored()
    assert len(conn_ids) == CYCLES, "conn_id must be unique for the server's life"
    stats = baseline.assert_restored()
    assert stats["connections"] <= baseline.stats["connections"]


def test_rejected_handshakes_leave_nothing_behind(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user()
    rejects = [
        dict(token=mint_token("a-wrong-secret-that-is-long-enough-for-hs256", user)),
        dict(token=mint_token(server.secret, user, ttl=-5)),
        dict(token=server.token(user), query={"last_seq": "-1"}),
    ]
    for spec in rejects * 5:
        probe = clients.track(ProtocolClient(server.ws_url, token=spec["token"], timeout=CLIENT_TIMEOUT))
        with pytest.raises(HandshakeRejected):
            probe.connect(query=spec.get("query"))
    baseline.assert_restored()
    first = clients.open(user)  # no slot of the user was kept by the refusals
    limit = first.welcome["limits"]["max_connections_per_user"]  # type: ignore[index]
    if limit > 20:
        pytest.skip(f"max_connections_per_user={limit} is too large to fill in a test")
    tabs = [first] + [clients.open(user) for _ in range(limit - 1)]
    with pytest.raises(HandshakeRejected) as caught:
        clients.open(user)
    assert (caught.value.status, caught.value.code) == (429, "connection_limit")
    for tab in tabs:
        tab.close()
    baseline.assert_restored()


def test_server_initiated_close_is_cleaned_up(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    client = clients.open()
    limit = client.welcome["limits"]["max_message_bytes"]  # type: ignore[index]
    client.send_raw('{"type":"echo","data":"' + "x" * limit + '"}')
    closed = client.wait_closed(CLIENT_TIMEOUT)
    assert closed.code == 1009
    baseline.assert_restored()


def test_pending_requests_fail_when_the_connection_ends(
    server: ServerHandle, clients: Clients, baseline: Baseline
) -> None:
    client = clients.open()
    client.drop()
    for call in (client.ping, lambda: client.echo(1), lambda: client.send(new_user(), 1, id="x")):
        with pytest.raises(ConnectionClosed):
            call()
    with pytest.raises(ConnectionClosed):
        client.next_push(0.1)
    again = clients.open(client.user)  # the user can come straight back
    assert again.state is State.OPEN and again.ping()["type"] == "pong"
    again.close()
    baseline.assert_restored()
