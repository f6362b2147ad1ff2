"""Core test 8: server ping frames at the configured interval; silent clients are closed with 1008.

Against an external target the tests use the heartbeat its welcome announces, and run when
it is short enough (support.FAST_ENOUGH); comparing two intervals needs two embedded servers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from client import ConnectionClosed, ProtocolClient, State
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, Target, new_user

FAST = {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.3}
SLOW = {"heartbeat_interval": 0.4, "heartbeat_timeout": 0.4}
PATIENCE = 1.2  # slack on top of interval + timeout before a missing close is a failure


def fast_server(configured_server: Callable[..., ServerHandle]) -> ServerHandle:
    return configured_server(**FAST)


def fast_target(target_with: Callable[..., Target]) -> tuple[ServerHandle, float, float]:
    """The server with a short heartbeat, its interval and its timeout."""
    target = target_with(**FAST)
    return target.server, float(target.settings["heartbeat_interval"]), float(target.settings["heartbeat_timeout"])


def intervals(client: ProtocolClient) -> list[float]:
    times = list(client.ping_times)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def assert_interval(client: ProtocolClient, interval: float) -> float:
    gaps = intervals(client)
    assert len(gaps) >= 2, f"only {len(client.ping_times)} server pings arrived (interval {interval}s)"
    median = statistics.median(gaps)
    assert 0.7 * interval <= median <= interval + 0.15, f"median ping gap {median:.3f}s, configured {interval}s"
    return median


def test_pings_arrive_at_the_configured_interval(target_with, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    srv, interval, timeout = fast_target(target_with)
    clients = Clients(srv)
    try:
        client = clients.open()
        assert client.welcome["heartbeat"] == {"interval": interval, "timeout": timeout}  # type: ignore[index]
        time.sleep(4.5 * interval)
        assert len(client.ping_times) >= 3
        assert_interval(client, interval)
        for _ in range(20):
            metrics.timed(client.ping)
    finally:
        clients.close_all()


def test_answering_clients_stay_connected_past_several_intervals(target_with, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    srv, interval, timeout = fast_target(target_with)
    base = Baseline(srv)
    clients = Clients(srv)
    try:
        tabs = [clients.open() for _ in range(3)]
        window = max(2 * (interval + timeout), 3.5 * interval)  # past several intervals and timeouts
        time.sleep(window)
        for tab in tabs:
            assert tab.state is State.OPEN
            assert len(tab.ping_times) >= 3  # they really were pinged (and answered)
            assert metrics.timed(tab.echo, "alive")["data"] == "alive"
        assert base.delta("heartbeat_timeouts") == 0
        for tab in tabs:
            assert tab.close().code == 1000
    finally:
        clients.close_all()
    base.assert_restored()


def test_silent_client_is_closed_with_1008_and_counted(target_with) -> None:  # type: ignore[no-untyped-def]
    srv, interval, timeout = fast_target(target_with)
    base = Baseline(srv)
    clients = Clients(srv)
    try:
        client = clients.make()
        client.answer_pings = False
        client.connect()
        t0 = time.monotonic()
        closed = client.wait_closed(interval + timeout + PATIENCE)
        assert (closed.code, closed.reason) == (1008, "heartbeat timeout")
        assert time.monotonic() - t0 >= timeout * 0.9  # not before the timeout
        assert len(client.ping_times) >= 1
        base.wait_delta("heartbeat_timeouts", 1)
    finally:
        clients.close_all()
    base.assert_restored()


def test_client_that_stops_answering_is_closed_and_its_other_tab_is_not(target_with) -> None:  # type: ignore[no-untyped-def]
    srv, interval, timeout = fast_target(target_with)
    base = Baseline(srv)
    clients = Clients(srv)
    try:
        user = new_user("hb")
        quitter = clients.open(user)
        steady = clients.open(user)
        time.sleep(2 * interval)
        assert quitter.state is State.OPEN and len(quitter.ping_times) >= 1
        quitter.answer_pings = False
        closed = quitter.wait_closed(interval + timeout + PATIENCE)
        assert closed.code == 1008
        with pytest.raises(ConnectionClosed):
            quitter.ping()
        assert steady.state is State.OPEN and steady.ping()["type"] == "pong"
        back = clients.open(user)  # the user can reconnect at once
        assert back.ping()["type"] == "pong"
        base.wait_delta("heartbeat_timeouts", 1)
        steady.close(), back.close()
    finally:
        clients.close_all()
    base.assert_restored()


def test_interval_is_configurable(configured_server, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    fast, slow = fast_server(configured_server), configured_server(**SLOW)
    on_fast, on_slow = Clients(fast), Clients(slow)
    try:
        a, b = on_fast.open(), on_slow.open()
        expected = {"interval": SLOW["heartbeat_interval"], "timeout": SLOW["heartbeat_timeout"]}
        assert b.welcome["heartbeat"] == expected  # type: ignore[index]
        time.sleep(3.3 * SLOW["heartbeat_interval"])
        fast_gap = assert_interval(a, FAST["heartbeat_interval"])
        slow_gap = assert_interval(b, SLOW["heartbeat_interval"])
        assert slow_gap > fast_gap * 1.5
        for client in (a, b):
            metrics.timed(client.ping)
    finally:
        on_fast.close_all()
        on_slow.close_all()
