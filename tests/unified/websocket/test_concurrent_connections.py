"""Core test 7: one user, several tabs: same messages, same seqs, a per-user limit, independent tabs."""

from __future__ import annotations

import pytest

from client import ConnectionClosed, HandshakeRejected, ProtocolClient
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, collect, new_user, quiet, send

TABS = 3
MESSAGES = 200


def limit_of(client: ProtocolClient) -> int:
    limit = client.welcome["limits"]["max_connections_per_user"]  # type: ignore[index]
    if limit > 20:
        pytest.skip(f"max_connections_per_user={limit} is too large to fill in a test")
    return int(limit)


def test_every_tab_gets_every_message_with_the_same_seq(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user, sender = new_user("tabs"), new_user("s")
    tabs = [clients.open(user) for _ in range(TABS)]
    assert len({tab.conn_id for tab in tabs}) == TABS
    stats = baseline.wait_delta("connections", TABS)
    assert stats["users"] - baseline.stats["users"] == 1  # one user, however many tabs
    out = clients.open(sender)
    with metrics.measure(MESSAGES * TABS):
        acks = [metrics.timed(send, out, user, {"n": i}, f"{sender}:{i}") for i in range(MESSAGES)]
        per_tab = [collect(tab, MESSAGES) for tab in tabs]
    expected = [(a["seq"], a["id"]) for a in acks]
    assert [a["seq"] for a in acks] == list(range(1, MESSAGES + 1))
    for i, got in enumerate(per_tab):
        assert [(m["seq"], m["id"]) for m in got] == expected, f"tab {i} differs from the acks"
        assert [m["data"] for m in got] == [{"n": n} for n in range(MESSAGES)]
    for tab in tabs:
        assert quiet(tab, 0.05) == []
    for tab in tabs:
        tab.close()
    out.close()
    baseline.assert_restored()


def test_message_to_self_reaches_all_tabs_including_the_sender(
    server: ServerHandle, clients: Clients, baseline: Baseline
) -> None:
    user = new_user("self")
    tabs = [clients.open(user) for _ in range(TABS)]
    ack = send(tabs[0], user, "note to self", "self-1")
    for tab in tabs:
        (message,) = collect(tab, 1)
        assert (message["seq"], message["from"], message["id"]) == (ack["seq"], user, "self-1")
    for tab in tabs:
        tab.close()
    baseline.assert_restored()


def test_connection_limit_per_user_is_429(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user("limit")
    first = clients.open(user)
    limit = limit_of(first)
    tabs = [first] + [clients.open(user) for _ in range(limit - 1)]
    for _ in range(2):
        extra = clients.make(user)
        with pytest.raises(HandshakeRejected) as caught:
            extra.connect()
        assert (caught.value.status, caught.value.code) == (429, "connection_limit")
    other = clients.open(new_user("other"))  # the limit is per user, not global
    assert other.ping()["type"] == "pong"
    tabs[0].close()  # a freed slot can be used again
    replacement = clients.open(user)
    assert replacement.ping()["type"] == "pong"
    for tab in [*tabs[1:], replacement, other]:
        tab.close()
    baseline.assert_restored()


@pytest.mark.parametrize("how", ["close", "drop"])
def test_closing_one_tab_leaves_the_others_working(
    server: ServerHandle, clients: Clients, baseline: Baseline, how: str
) -> None:
    user, sender = new_user("tabs"), new_user("s")
    tabs = [clients.open(user) for _ in range(TABS)]
    out = clients.open(sender)
    send(out, user, "before")
    for tab in tabs:
        assert [m["data"] for m in collect(tab, 1)] == ["before"]
    gone, *rest = tabs
    gone.close() if how == "close" else gone.drop()
    baseline.wait_delta("connections", TABS)  # the rest plus the sender
    ack = send(out, user, "after")
    for tab in rest:
        assert [(m["seq"], m["data"]) for m in collect(tab, 1)] == [(ack["seq"], "after")]
        assert tab.ping()["type"] == "pong"
    with pytest.raises(ConnectionClosed):
        gone.ping()
    for tab in [*rest, out]:
        tab.close()
    baseline.assert_restored()
