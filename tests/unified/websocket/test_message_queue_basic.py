"""Core test 6: the offline queue: queued in order, flushed on reconnect, resumable, bounded, expiring.

The bound and the expiry run against an external target too, with the `queue_size` and
`queue_ttl` its welcome announces, when they are small enough (support.FAST_ENOUGH).
"""

from __future__ import annotations

import pytest

from client import HandshakeRejected, ProtocolError
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import (
    Baseline,
    Clients,
    collect,
    is_embedded,
    needs_queue,
    new_user,
    on_own_server,
    quiet,
    send,
    wait_until,
)

QUEUE_SIZE = 5
QUEUE_TTL = 0.6


def test_offline_messages_are_queued_and_flushed_in_order(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    sender, receiver = new_user("s"), new_user("r")
    out = clients.open(sender)
    needs_queue(out, 10)
    with metrics.measure(10):
        acks = [metrics.timed(send, out, receiver, {"n": i}, f"{sender}:{i}") for i in range(10)]
    assert [(a["seq"], a["queued"]) for a in acks] == [(i, True) for i in range(1, 11)]
    baseline.wait_delta("queued_messages", 10)

    inbox = clients.open(receiver)
    session = inbox.session
    assert session is not None
    assert (session.welcome["replay"], session.welcome["last_seq"], session.welcome["gap"]) == (10, 10, None)
    assert session.replayed == [
        {"type": "message", "seq": i + 1, "from": sender, "id": f"{sender}:{i}", "data": {"n": i}} for i in range(10)
    ]
    assert quiet(inbox) == []  # flushed once, as replay, not again live
    baseline.wait_delta("queued_messages", 0)
    assert send(out, receiver, "live")["queued"] is False  # and now it is live
    assert [m["seq"] for m in collect(inbox, 1)] == [11]
    inbox.close()
    again = clients.open(receiver)  # everything was delivered: nothing is replayed twice
    assert again.session is not None and again.session.welcome["replay"] == 0
    again.close(), out.close()
    baseline.assert_restored()


def test_last_seq_resume_replays_exactly_what_was_missed(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    sender, receiver = new_user("s"), new_user("r")
    out, inbox = clients.open(sender), clients.open(receiver)
    needs_queue(out, 8)
    for i in range(5):
        send(out, receiver, i)
    seen = [m["seq"] for m in collect(inbox, 5)]
    assert seen == [1, 2, 3, 4, 5]
    inbox.drop()
    baseline.wait_delta("connections", 1)  # the server saw it go: the next sends are queued
    for i in range(5, 8):
        assert send(out, receiver, i)["queued"] is True
    for resume_from, expected in ((5, [6, 7, 8]), (2, [3, 4, 5, 6, 7, 8]), (8, [])):
        client = clients.make(receiver)
        session = metrics.timed(client.connect, resume_from)
        assert session.welcome["resumed"] is True and session.welcome["gap"] is None
        assert [m["seq"] for m in session.replayed] == expected
        assert [m["data"] for m in session.replayed] == [s - 1 for s in expected]
        client.close()
    out.close()
    baseline.assert_restored()


def test_resume_point_beyond_the_server_is_a_gap(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    receiver = new_user("r")
    client = clients.make(receiver)
    session = client.connect(last_seq=1000)  # the server never saw this user: it lost its memory
    assert session.welcome["resumed"] is False
    assert session.welcome["gap"] == {"from": 1001, "to": None}
    assert session.replayed == []
    client.close()
    baseline.assert_restored()


@pytest.mark.parametrize("last_seq", ["-1", "abc", "1.5", ""])
def test_bad_last_seq_is_rejected(server: ServerHandle, clients: Clients, baseline: Baseline, last_seq: str) -> None:
    client = clients.make()
    with pytest.raises(HandshakeRejected) as caught:
        client.connect(query={"last_seq": last_seq})
    assert (caught.value.status, caught.value.code) == (400, "invalid_field")
    baseline.assert_restored()


def test_full_queue_refuses_the_sender_with_queue_full(target_with, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    target = target_with(queue_size=QUEUE_SIZE)
    size = int(target.settings["queue_size"])
    with on_own_server(target.server) as (clients, base):
        sender, receiver = new_user("s"), new_user("r")
        out = clients.open(sender)
        for i in range(size):
            assert metrics.timed(send, out, receiver, i)["seq"] == i + 1
        for i in range(3):
            with pytest.raises(ProtocolError) as caught:
                out.send(receiver, "one too many", id=f"over-{i}")
            assert caught.value.code == "queue_full" and caught.value.frame["id"] == f"over-{i}"
        assert out.ping()["type"] == "pong"  # the sender's connection is fine
        base.wait_delta("rejected_queue_full", 3)
        inbox = clients.open(receiver)
        assert inbox.session is not None
        assert [m["data"] for m in inbox.session.replayed] == list(range(size))  # nothing silently dropped
        assert send(out, receiver, "after")["seq"] == size + 1  # refused sends used no seq
        out.close(), inbox.close()


def test_expired_messages_are_not_delivered_and_are_counted(target_with) -> None:  # type: ignore[no-untyped-def]
    target = target_with(queue_ttl=QUEUE_TTL)
    ttl = float(target.settings["queue_ttl"])
    if not is_embedded(target.server):  # a shared target: let earlier tests' queued messages expire first
        wait_until(lambda: target.server.stats()["queued_messages"] == 0, ttl + 1.5)
    with on_own_server(target.server) as (clients, base):
        sender, receiver = new_user("s"), new_user("r")
        out = clients.open(sender)
        for i in range(3):
            assert send(out, receiver, i)["queued"] is True
        base.wait_delta("queued_messages", 3)
        base.wait_delta("expired_messages", 3, timeout=ttl + 1.5)
        assert base.delta("queued_messages") == 0
        fresh = send(out, receiver, "fresh")  # a new one after the expiry is still delivered
        inbox = clients.open(receiver)
        session = inbox.session
        assert session is not None
        assert [m["data"] for m in session.replayed] == ["fresh"]
        assert session.replayed[0]["seq"] == fresh["seq"]
        # the user may have been forgotten with its queue (seq restarts at 1); if not, the hole is announced
        expected_gap = None if fresh["seq"] == 1 else {"from": 1, "to": fresh["seq"] - 1}
        assert session.welcome["gap"] == expected_gap
        assert quiet(inbox) == []
        inbox.close(), out.close()
