"""socketproof.run bounds (delivery tracker, live identities, identities) and checking.http_base."""

from __future__ import annotations

import random

import pytest

from socketproof.checking import http_base
from socketproof.options import LoadOptions
from socketproof.run import DeliveryTracker, LiveIdentities, RunState


def test_delivery_is_timed_once_from_its_send() -> None:
    tracker = DeliveryTracker()
    tracker.sent("a:1")
    elapsed = tracker.received("a:1")
    assert elapsed is not None and 0.0 <= elapsed < 60_000.0
    assert tracker.received("a:1") is None, "a second receipt (another tab, a replay) is no new delivery"
    assert tracker.received("never-sent") is None
    assert tracker.received(None) is None


def test_delivery_tracker_forgets_the_oldest_beyond_its_cap() -> None:
    tracker = DeliveryTracker(cap=3)
    for n in range(5):
        tracker.sent(f"m:{n}")
    assert tracker.received("m:0") is None
    assert tracker.received("m:1") is None
    assert all(tracker.received(f"m:{n}") is not None for n in (2, 3, 4))


def test_delivery_tracker_memory_stays_bounded() -> None:
    tracker = DeliveryTracker(cap=100)
    for n in range(10_000):
        tracker.sent(f"m:{n}")
    assert sum(tracker.received(f"m:{n}") is not None for n in range(10_000)) == 100


def test_live_identities_count_connections_per_identity() -> None:
    live = LiveIdentities()
    rng = random.Random(1)
    assert live.pick(rng, "me") == "me"
    live.add("alice")
    live.add("alice")
    live.remove("alice")
    assert live.pick(rng, "me") == "alice", "one of alice's two connections is still open"
    live.remove("alice")
    assert live.pick(rng, "me") == "me"


def test_live_identities_ignore_a_remove_without_add() -> None:
    live = LiveIdentities()
    rng = random.Random(2)
    live.remove("ghost")
    live.add("bob")
    live.remove("ghost")
    live.remove("bob")
    live.remove("bob")  # one remove too many must not go negative
    live.add("bob")
    assert live.pick(rng, "me") == "bob"
    live.remove("bob")
    assert live.pick(rng, "me") == "me"


def test_live_identities_pick_only_live_ones() -> None:
    live = LiveIdentities()
    for name in ("a", "b", "c"):
        live.add(name)
    live.remove("b")
    rng = random.Random(3)
    assert {live.pick(rng, "me") for _ in range(200)} == {"a", "c"}


def test_identities_cycle_through_the_pool_and_labels_are_unique() -> None:
    state = RunState(LoadOptions(identities=3), "w1")
    assert [state.identity("chat") for _ in range(4)] == ["chat-w1-0", "chat-w1-1", "chat-w1-2", "chat-w1-0"]
    assert state.identity("idle") == "idle-w1-0"
    labels = {state.label("chat-w1-0") for _ in range(50)}
    assert len(labels) == 50
    assert state.recorder is not None and state.stopping is False


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765"),
        ("wss://example.com/prefix/ws", "https://example.com"),
        ("http://localhost:80", "http://localhost:80"),
        ("https://h:443/", "https://h:443"),
    ],
)
def test_http_base_is_where_stats_lives(host: str, base: str) -> None:
    assert http_base(host) == base
