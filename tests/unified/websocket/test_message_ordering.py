"""Core test 9: one total order per user: FIFO per sender, seq +1, same order on every tab, no duplicates.

Message counts are large enough (200+) that a server dropping, duplicating or
reordering even 10% of deliveries cannot pass.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from client import ProtocolClient, ProtocolError
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, collect, new_user, quiet, send

MESSAGES = 250
SENDERS = 4
PER_SENDER = 60


def stream_problems(messages: list[dict[str, Any]], expected_seqs: list[int]) -> list[str]:
    """What is wrong with one connection's stream, in words (empty: nothing)."""
    seqs = [m["seq"] for m in messages]
    problems = []
    dupes = sorted(seq for seq, n in Counter(seqs).items() if n > 1)
    if dupes:
        problems.append(f"duplicated seqs {dupes[:10]}")
    missing = sorted(set(expected_seqs) - set(seqs))
    if missing:
        problems.append(f"{len(missing)} acked seqs never arrived, e.g. {missing[:10]}")
    backwards = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b <= a]
    if backwards:
        problems.append(f"out of order at {backwards[:5]}")
    if not problems and seqs != expected_seqs:
        problems.append(f"seqs {seqs[:10]}... are not the acked {expected_seqs[:10]}...")
    return problems


def assert_fifo(messages: list[dict[str, Any]]) -> None:
    """Each sender's messages arrive in the order it sent them (ids end in a counter)."""
    last: dict[str, int] = {}
    for m in messages:
        sender, _, n = m["id"].rpartition(":")
        assert int(n) > last.get(sender, -1), f"{sender} message {n} arrived after {last[sender]}"
        last[sender] = int(n)


def test_fifo_per_sender_and_seq_plus_one(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    receiver, sender = new_user("r"), new_user("s")
    tabs = [clients.open(receiver) for _ in range(2)]
    out = clients.open(sender)
    with metrics.measure(MESSAGES):
        acks = [metrics.timed(send, out, receiver, i, f"{sender}:{i}") for i in range(MESSAGES)]
        streams = [collect(tab, MESSAGES) for tab in tabs]
    acked = [a["seq"] for a in acks]
    assert acked == list(range(1, MESSAGES + 1)), "ack seqs must start at 1 and grow by exactly 1"
    for i, stream in enumerate(streams):
        assert stream_problems(stream, acked) == [], f"tab {i}"
        assert [m["id"] for m in stream] == [f"{sender}:{i}" for i in range(MESSAGES)]
        assert [m["data"] for m in stream] == list(range(MESSAGES))
        assert_fifo(stream)
    for tab in tabs:
        assert quiet(tab, 0.05) == []
    for c in (*tabs, out):
        c.close()
    baseline.assert_restored()


def test_seqs_are_per_user(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    sender, first, second = new_user("s"), new_user("r1"), new_user("r2")
    out, a, b = clients.open(sender), clients.open(first), clients.open(second)
    acks: dict[str, list[int]] = {first: [], second: []}
    for i in range(MESSAGES):  # interleaved: one user's traffic must not move the other's seq
        to = first if i % 3 else second
        acks[to].append(send(out, to, i, f"{sender}:{i}")["seq"])
    for user, client in ((first, a), (second, b)):
        assert acks[user] == list(range(1, len(acks[user]) + 1)), user
        stream = collect(client, len(acks[user]))
        assert stream_problems(stream, acks[user]) == [], user
    for c in (out, a, b):
        c.close()
    baseline.assert_restored()


def test_concurrent_senders_give_every_tab_the_same_order(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    receiver = new_user("r")
    tabs = [clients.open(receiver) for _ in range(3)]
    senders = [clients.open(new_user(f"s{i}")) for i in range(SENDERS)]
    acks: dict[str, int] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(SENDERS)

    def run(client: ProtocolClient) -> None:
        try:
            start.wait(5)
            for n in range(PER_SENDER):
                mid = f"{client.user}:{n}"
                acks[mid] = send(client, receiver, n, mid)["seq"]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in senders]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    total = SENDERS * PER_SENDER
    streams = [collect(tab, total) for tab in tabs]
    metrics.throughput(total, time.perf_counter() - t0)
    assert not failures, failures
    assert not any(t.is_alive() for t in threads)
    assert sorted(acks.values()) == list(range(1, total + 1)), "every accepted message gets its own seq"
    reference = [(m["seq"], m["id"]) for m in streams[0]]
    for i, stream in enumerate(streams):
        assert stream_problems(stream, list(range(1, total + 1))) == [], f"tab {i}"
        assert [(m["seq"], m["id"]) for m in stream] == reference, f"tab {i} saw another order than tab 0"
        assert all(acks[m["id"]] == m["seq"] for m in stream), "a message arrived with another seq than its ack"
        assert_fifo(stream)
    for c in (*tabs, *senders):
        c.close()
    baseline.assert_restored()


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "send", "data": 1},
        {"type": "send", "to": "", "data": 1},
        {"type": "send", "to": 42, "data": 1},
    ],
    ids=["no-to", "empty-to", "numeric-to"],
)
def test_refused_sends_leave_no_hole_in_the_order(
    server: ServerHandle, clients: Clients, baseline: Baseline, bad: dict[str, Any]
) -> None:
    receiver, sender = new_user("r"), new_user("s")
    inbox, out = clients.open(receiver), clients.open(sender)
    acked = []
    for i in range(30):
        if i % 5 == 4:
            with pytest.raises(ProtocolError):
                out.request({**bad, "id": f"bad-{i}"})
        else:
            acked.append(send(out, receiver, i, f"{sender}:{i}")["seq"])
    assert acked == list(range(1, len(acked) + 1))
    assert stream_problems(collect(inbox, len(acked)), acked) == []
    inbox.close(), out.close()
    baseline.assert_restored()


def test_resume_mid_stream_keeps_one_order(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    receiver, sender = new_user("r"), new_user("s")
    inbox, out = clients.open(receiver), clients.open(sender)
    for i in range(20):
        send(out, receiver, i, f"{sender}:{i}")
    first = collect(inbox, 20)
    seen = first[-1]["seq"] if first else 0
    inbox.drop()
    baseline.wait_delta("connections", 1)  # the server saw it go: the next sends are queued
    for i in range(20, 40):
        assert send(out, receiver, i, f"{sender}:{i}")["queued"] is True
    back = clients.make(receiver)
    session = back.connect(last_seq=seen)
    for i in range(40, 60):
        send(out, receiver, i, f"{sender}:{i}")
    stream = first + session.replayed + collect(back, 20)
    assert stream_problems(stream, list(range(1, 61))) == []
    assert [m["data"] for m in stream] == list(range(60))
    back.close(), out.close()
    baseline.assert_restored()
