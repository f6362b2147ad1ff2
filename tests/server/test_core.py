"""The protocol core (server/core.py) as plain unit tests: frames in, frames out, time as `now`."""

from __future__ import annotations

import collections
import json
import logging
import random
from typing import Any

import jwt
import pytest

from server.auth import AuthError, Claims
from server.config import load_settings
from server.core import Connection, Hub, Outbound, State

T0 = 1_700_000_000.0
SECRET = "core-test-secret-0123456789-0123456789"


def make_hub(seed: int = 7, **settings: Any) -> Hub:
    return Hub(load_settings({"jwt_secret": SECRET, **settings}, environ={}), rng=random.Random(seed), clock=lambda: T0)


def token(user: str, exp: float = T0 + 3600, key: str = SECRET, **claims: Any) -> str:
    return jwt.encode({"sub": user, "exp": exp, **claims}, key, algorithm="HS256")


class Net:
    """Routes the hub's Outbound frames into one inbox per connection, as the transport would."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.inbox: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)

    def route(self, outbound: list[Outbound]) -> None:
        for item in outbound:
            assert isinstance(item, Outbound)
            json.dumps(item.message)  # every frame must be serialisable
            for target in item.targets:
                if target in self.hub.connections:
                    self.inbox[target].append(item.message)

    def connect(self, user: str, now: float = T0, last_seq: int | None = None, exp: float | None = None) -> Connection:
        assert self.hub.reserve(user)
        conn, outbound = self.hub.open(Claims(user, T0 + 3600 if exp is None else exp), last_seq, now)
        self.route(outbound)
        return conn

    def handle(self, conn: Connection, message: dict[str, Any] | str | bytes, now: float = T0) -> None:
        frame = json.dumps(message) if isinstance(message, dict) else message
        self.route(self.hub.handle(conn, frame, now))

    def take(self, conn: Connection) -> list[dict[str, Any]]:
        frames = self.inbox[conn.id]
        self.inbox[conn.id] = []
        return frames

    def reply(self, conn: Connection, message: dict[str, Any] | str | bytes, now: float = T0) -> dict[str, Any]:
        """Send one frame and return the single frame this connection got back."""
        self.take(conn)
        self.handle(conn, message, now)
        frames = self.take(conn)
        assert len(frames) == 1, frames
        return frames[0]

    def opening(
        self, user: str, now: float = T0, last_seq: int | None = None
    ) -> tuple[Connection, list[dict[str, Any]]]:
        conn = self.connect(user, now, last_seq)
        return conn, self.take(conn)

    def send_numbered(self, sender: Connection, to: str, count: int) -> None:
        """`sender` sends messages 1..count to `to` (id and data are the number)."""
        for n in range(1, count + 1):
            self.handle(sender, {"type": "send", "id": n, "to": to, "data": n})

    def seqs(self, conn: Connection) -> list[int]:
        return [frame["seq"] for frame in self.take(conn) if frame["type"] == "message"]


@pytest.fixture
def net() -> Net:
    return Net(make_hub())


def assert_alive(net: Net, conn: Connection) -> None:
    """After an error the connection keeps working."""
    assert net.reply(conn, {"type": "ping", "id": "alive"})["type"] == "pong"


# -- welcome, snapshot, replay -------------------------------------------------


def test_fresh_user_gets_welcome_then_snapshot(net: Net) -> None:
    conn, frames = net.opening("alice")
    welcome, snapshot = frames
    assert welcome == {
        "type": "welcome",
        "protocol": 1,
        "conn_id": conn.id,
        "user": "alice",
        "heartbeat": {"interval": 20.0, "timeout": 10.0},
        "limits": {
            "max_connections_per_user": 5,
            "max_message_bytes": 65536,
            "queue_size": 100,
            "queue_ttl": 60.0,
            "rate_limit": 1000,
        },
        "last_seq": 0,
        "replay": 0,
        "resumed": False,
        "gap": None,
        "token_exp": T0 + 3600,
    }
    assert snapshot == {"type": "snapshot", "version": 0, "state": {}}
    assert conn.state is State.OPEN


def test_conn_ids_are_unique(net: Net) -> None:
    ids = {net.connect(user).id for user in ("a", "b", "a", "c", "a")}
    assert len(ids) == 5


def test_offline_queue_is_flushed_in_seq_order_then_not_again(net: Net) -> None:
    alice = net.connect("alice")
    for n in range(1, 4):
        assert net.reply(alice, {"type": "send", "id": f"m{n}", "to": "bob", "data": {"n": n}}) == {
            "type": "ack",
            "id": f"m{n}",
            "seq": n,
            "queued": True,
        }
    bob, frames = net.opening("bob")
    assert frames[0]["last_seq"] == 3 and frames[0]["replay"] == 3
    assert frames[0]["resumed"] is False and frames[0]["gap"] is None
    assert frames[1]["type"] == "snapshot"
    assert frames[2:] == [
        {"type": "message", "seq": n, "from": "alice", "id": f"m{n}", "data": {"n": n}} for n in range(1, 4)
    ]
    net.hub.close(bob, T0 + 1)
    _, again = net.opening("bob", T0 + 2)
    assert again[0]["replay"] == 0 and len(again) == 2


def test_resume_from_last_seq_replays_the_rest(net: Net) -> None:
    alice = net.connect("alice")
    bob = net.connect("bob")
    net.send_numbered(alice, "bob", 3)
    assert net.seqs(bob) == [1, 2, 3]
    net.hub.close(bob, T0 + 1)
    _, frames = net.opening("bob", T0 + 2, last_seq=1)
    assert frames[0]["replay"] == 2 and frames[0]["resumed"] is True and frames[0]["gap"] is None
    assert [frame["seq"] for frame in frames[2:]] == [2, 3]
    _, frames = net.opening("bob", T0 + 2, last_seq=3)
    assert frames[0]["replay"] == 0 and frames[0]["resumed"] is True and frames[0]["gap"] is None
    assert len(frames) == 2


def test_gap_after_expiry(net: Net) -> None:
    hub = net.hub
    alice = net.connect("alice")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1}, T0)
    net.handle(alice, {"type": "send", "id": 2, "to": "bob", "data": 2}, T0 + 1)
    net.handle(alice, {"type": "send", "id": 3, "to": "bob", "data": 3}, T0 + 30)
    assert hub.stats(T0 + 30)["queued_messages"] == 3
    _, frames = net.opening("bob", T0 + 61.5, last_seq=0)
    welcome = frames[0]
    assert welcome["gap"] == {"from": 1, "to": 2}
    assert welcome["resumed"] is False and welcome["replay"] == 1 and welcome["last_seq"] == 3
    assert [frame["seq"] for frame in frames[2:]] == [3]
    assert hub.stats(T0 + 61.5)["expired_messages"] == 2


def test_gap_after_expiry_without_last_seq(net: Net) -> None:
    alice = net.connect("alice")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1}, T0)
    _, frames = net.opening("bob", T0 + 61)
    assert frames[0]["gap"] == {"from": 1, "to": 1}
    assert frames[0]["resumed"] is False and frames[0]["replay"] == 0


def test_gap_after_eviction_from_the_retention_window() -> None:
    net = Net(make_hub(queue_size=3))
    alice, bob = net.connect("alice"), net.connect("bob")
    net.send_numbered(alice, "bob", 5)
    assert net.seqs(bob) == [1, 2, 3, 4, 5]
    assert net.hub.stats(T0)["retained_messages"] == 3
    net.hub.close(bob, T0)
    _, frames = net.opening("bob", T0 + 1, last_seq=1)
    assert frames[0]["gap"] == {"from": 2, "to": 2}
    assert frames[0]["resumed"] is False
    assert [frame["seq"] for frame in frames[2:]] == [3, 4, 5]


def test_last_seq_above_the_servers_gives_open_gap(net: Net) -> None:
    _, frames = net.opening("bob", last_seq=10)
    assert frames[0]["last_seq"] == 0
    assert frames[0]["gap"] == {"from": 11, "to": None}
    assert frames[0]["resumed"] is False and frames[0]["replay"] == 0


def test_last_seq_above_the_servers_still_replays_undelivered(net: Net) -> None:
    alice = net.connect("alice")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1})
    _, frames = net.opening("bob", last_seq=5)
    assert frames[0]["gap"] == {"from": 6, "to": None} and frames[0]["resumed"] is False
    assert [frame["seq"] for frame in frames[2:]] == [1]


# -- message types ---------------------------------------------------------------


def test_ping(net: Net) -> None:
    conn = net.connect("alice")
    assert net.reply(conn, {"type": "ping", "id": "p1"}, T0 + 0.25) == {
        "type": "pong",
        "id": "p1",
        "ts": int((T0 + 0.25) * 1000),
    }


@pytest.mark.parametrize(
    "data",
    [None, 0, -1.5, "text \u00e9\U0001f600", [1, [2, {"x": None}]], {"nested": {"a": [True, False]}}, ""],
)
@pytest.mark.parametrize("request_id", [1, "abc", 0])
def test_echo_returns_data_unchanged(net: Net, data: Any, request_id: Any) -> None:
    conn = net.connect("alice")
    reply = net.reply(conn, {"type": "echo", "id": request_id, "data": data}, T0 + 1)
    assert reply == {"type": "echo", "id": request_id, "data": data, "ts": int((T0 + 1) * 1000)}


def test_replies_to_messages_without_id_have_no_id(net: Net) -> None:
    conn = net.connect("alice")
    assert net.reply(conn, {"type": "ping"}) == {"type": "pong", "ts": int(T0 * 1000)}
    assert net.reply(conn, {"type": "echo"}) == {"type": "echo", "data": None, "ts": int(T0 * 1000)}
    assert net.reply(conn, {"type": "sync"}) == {"type": "snapshot", "version": 0, "state": {}}
    assert net.reply(conn, {"type": "update", "base_version": 0, "patch": {}}) == {"type": "ack", "version": 1}
    assert net.reply(conn, {"type": "refresh", "token": token("alice")})["type"] == "refreshed"
    assert "id" not in net.reply(conn, {"type": "refresh", "token": token("alice")})
    assert "id" not in net.reply(conn, {"type": "nope"})


def test_send_to_other_online_user(net: Net) -> None:
    alice, bob = net.connect("alice"), net.connect("bob")
    net.take(alice), net.take(bob)
    net.handle(alice, {"type": "send", "id": "x", "to": "bob", "data": {"hi": 1}})
    assert net.take(alice) == [{"type": "ack", "id": "x", "seq": 1, "queued": False}]
    assert net.take(bob) == [{"type": "message", "seq": 1, "from": "alice", "id": "x", "data": {"hi": 1}}]


def test_send_to_offline_user_is_queued_and_delivered_to_nobody(net: Net) -> None:
    alice = net.connect("alice")
    net.take(alice)
    net.handle(alice, {"type": "send", "id": 1, "to": "ghost", "data": None})
    assert net.take(alice) == [{"type": "ack", "id": 1, "seq": 1, "queued": True}]
    assert all(not frames for frames in net.inbox.values())
    assert net.hub.stats(T0)["queued_messages"] == 1


def test_send_to_self_reaches_every_tab_including_the_sender(net: Net) -> None:
    tab1, tab2 = net.connect("alice"), net.connect("alice")
    net.take(tab1), net.take(tab2)
    net.handle(tab1, {"type": "send", "id": 9, "to": "alice", "data": "note"})
    message = {"type": "message", "seq": 1, "from": "alice", "id": 9, "data": "note"}
    assert net.take(tab1) == [{"type": "ack", "id": 9, "seq": 1, "queued": False}, message]
    assert net.take(tab2) == [message]


def test_seq_is_per_user_plus_one_and_identical_on_all_tabs(net: Net) -> None:
    alice, carol = net.connect("alice"), net.connect("carol")
    tabs = [net.connect("bob") for _ in range(3)]
    for tab in tabs:
        net.take(tab)
    acks: list[int] = []
    for n in range(10):
        sender = alice if n % 2 else carol
        net.handle(sender, {"type": "send", "id": n, "to": "bob", "data": n})
        acks.extend(frame["seq"] for frame in net.take(sender) if frame["type"] == "ack")
    assert acks == list(range(1, 11))
    received = [[(f["seq"], f["from"], f["data"]) for f in net.take(tab)] for tab in tabs]
    assert received[0] == received[1] == received[2]
    assert [item[0] for item in received[0]] == list(range(1, 11))
    # Another user's seqs are their own: they start at 1.
    net.handle(alice, {"type": "send", "id": "own", "to": "carol", "data": None})
    assert net.take(alice)[0]["seq"] == 1


def test_refresh_with_a_valid_token(net: Net) -> None:
    conn = net.connect("alice", exp=T0 + 10)
    reply = net.reply(conn, {"type": "refresh", "id": "r", "token": token("alice", exp=T0 + 500)}, T0 + 5)
    assert reply == {"type": "refreshed", "id": "r", "exp": T0 + 500}
    assert conn.token_exp == T0 + 500


@pytest.mark.parametrize(
    ("tok", "code"),
    [
        (token("alice", key="another-key-0123456789-0123456789-0123"), "invalid_token"),
        ("garbage", "invalid_token"),
        ("", "invalid_token"),
        (token("alice", exp=T0 - 1), "token_expired"),
        (token("bob"), "wrong_user"),
    ],
    ids=["wrong-key", "garbage", "empty", "expired", "wrong-user"],
)
def test_refused_refresh_keeps_the_old_token(net: Net, tok: str, code: str) -> None:
    conn = net.connect("alice", exp=T0 + 10)
    reply = net.reply(conn, {"type": "refresh", "id": 4, "token": tok}, T0)
    assert reply["type"] == "error" and reply["code"] == code and reply["id"] == 4 and reply["message"]
    assert conn.token_exp == T0 + 10
    assert net.hub.stats(T0)["auth_failures"] == 1
    assert_alive(net, conn)


def test_update_acks_and_patches_the_other_tabs(net: Net) -> None:
    tab1, tab2, tab3 = net.connect("alice"), net.connect("alice"), net.connect("alice")
    for tab in (tab1, tab2, tab3):
        net.take(tab)
    net.handle(tab1, {"type": "update", "id": "u1", "base_version": 0, "patch": {"a": 1, "b": [2]}})
    assert net.take(tab1) == [{"type": "ack", "id": "u1", "version": 1}]
    patch = {"type": "patch", "version": 1, "patch": {"a": 1, "b": [2]}}
    assert net.take(tab2) == [patch] and net.take(tab3) == [patch]
    net.handle(tab2, {"type": "update", "id": "u2", "base_version": 1, "patch": {"a": None, "c": "x"}})
    assert net.take(tab2) == [{"type": "ack", "id": "u2", "version": 2}]
    assert net.reply(tab3, {"type": "sync", "id": "s"}) == {
        "type": "snapshot",
        "id": "s",
        "version": 2,
        "state": {"b": [2], "c": "x"},
    }
    # A new connection starts from the current document; other users have their own.
    _, frames = net.opening("alice")
    assert frames[1] == {"type": "snapshot", "version": 2, "state": {"b": [2], "c": "x"}}
    _, frames = net.opening("bob")
    assert frames[1] == {"type": "snapshot", "version": 0, "state": {}}


def test_version_conflict_changes_nothing(net: Net) -> None:
    tab1, tab2 = net.connect("alice"), net.connect("alice")
    net.handle(tab1, {"type": "update", "id": 1, "base_version": 0, "patch": {"k": "v"}})
    net.take(tab1), net.take(tab2)
    for base in (0, 2, 99):
        reply = net.reply(tab1, {"type": "update", "id": "late", "base_version": base, "patch": {"k": "other"}})
        assert reply["type"] == "error" and reply["code"] == "version_conflict"
        assert reply["id"] == "late" and reply["current_version"] == 1 and reply["message"]
    assert net.take(tab2) == []
    assert net.reply(tab2, {"type": "sync", "id": 2}) == {
        "type": "snapshot",
        "id": 2,
        "version": 1,
        "state": {"k": "v"},
    }


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["not json", "{", "[1, 2]", "42", '"text"', "null", "true", ""])
def test_bad_json_including_non_objects(net: Net, text: str) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, text)
    assert reply["type"] == "error" and reply["code"] == "bad_json" and reply["message"]
    assert "id" not in reply
    assert_alive(net, conn)


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"id": 1}, "missing_field", "type"),
        ({"id": 1, "type": 5}, "invalid_field", "type"),
        ({"id": 1, "type": None}, "missing_field", "type"),
        ({"id": 1, "type": "send", "data": 1}, "missing_field", "to"),
        ({"id": 1, "type": "send", "to": "", "data": 1}, "invalid_field", "to"),
        ({"id": 1, "type": "send", "to": 7, "data": 1}, "invalid_field", "to"),
        ({"id": 1, "type": "send", "to": ["bob"], "data": 1}, "invalid_field", "to"),
        ({"id": 1, "type": "refresh"}, "missing_field", "token"),
        ({"id": 1, "type": "refresh", "token": 5}, "invalid_field", "token"),
        ({"id": 1, "type": "update", "patch": {}}, "missing_field", "base_version"),
        ({"id": 1, "type": "update", "base_version": -1, "patch": {}}, "invalid_field", "base_version"),
        ({"id": 1, "type": "update", "base_version": "0", "patch": {}}, "invalid_field", "base_version"),
        ({"id": 1, "type": "update", "base_version": 0.0, "patch": {}}, "invalid_field", "base_version"),
        ({"id": 1, "type": "update", "base_version": True, "patch": {}}, "invalid_field", "base_version"),
        ({"id": 1, "type": "update", "base_version": 0}, "missing_field", "patch"),
        ({"id": 1, "type": "update", "base_version": 0, "patch": [1]}, "invalid_field", "patch"),
        ({"id": 1, "type": "update", "base_version": 0, "patch": "x"}, "invalid_field", "patch"),
    ],
)
def test_field_errors_name_the_field_and_echo_the_id(net: Net, message: dict[str, Any], code: str, field: str) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, message)
    assert reply["type"] == "error" and reply["message"]
    assert (reply["code"], reply["field"], reply["id"]) == (code, field, 1)
    assert_alive(net, conn)
    # Nothing was accepted or changed by the refused message.
    stats = net.hub.stats(T0)
    assert stats["retained_messages"] == 0
    assert net.reply(conn, {"type": "sync"})["version"] == 0


def test_send_without_id_is_missing_field_id(net: Net) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, {"type": "send", "to": "bob", "data": 1})
    assert (reply["code"], reply["field"]) == ("missing_field", "id") and "id" not in reply
    assert net.hub.stats(T0)["retained_messages"] == 0


@pytest.mark.parametrize("bad_id", [1.5, True, None, [1], {"a": 1}])
def test_invalid_id_is_invalid_field_id(net: Net, bad_id: Any) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, {"type": "ping", "id": bad_id})
    if bad_id is None:  # null is the same as no id
        assert reply == {"type": "pong", "ts": int(T0 * 1000)}
        return
    assert (reply["type"], reply["code"], reply["field"]) == ("error", "invalid_field", "id")
    assert "id" not in reply
    assert_alive(net, conn)


def test_unknown_type(net: Net) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, {"type": "teleport", "id": "t"})
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "unknown_type", "t")
    assert "teleport" in reply["message"]
    assert_alive(net, conn)


def test_binary_frame_is_unsupported(net: Net) -> None:
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, b'{"type": "ping", "id": 1}')
    assert (reply["type"], reply["code"]) == ("error", "unsupported_frame")
    assert_alive(net, conn)


def test_queue_full_refuses_without_using_a_seq() -> None:
    net = Net(make_hub(queue_size=2))
    alice = net.connect("alice")
    net.take(alice)
    for n in (1, 2):
        assert net.reply(alice, {"type": "send", "id": n, "to": "bob", "data": n})["seq"] == n
    reply = net.reply(alice, {"type": "send", "id": "third", "to": "bob", "data": 3})
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "queue_full", "third")
    stats = net.hub.stats(T0)
    assert stats["rejected_queue_full"] == 1 and stats["queued_messages"] == 2
    bob, frames = net.opening("bob")
    assert frames[0]["last_seq"] == 2 and [f["seq"] for f in frames[2:]] == [1, 2]
    net.hub.close(bob, T0)
    # Delivered entries are evicted first: the queue has room again.
    assert net.reply(alice, {"type": "send", "id": 4, "to": "bob", "data": 4})["seq"] == 3
    assert net.reply(alice, {"type": "send", "id": 5, "to": "bob", "data": 5})["seq"] == 4
    assert net.reply(alice, {"type": "send", "id": 6, "to": "bob", "data": 6})["code"] == "queue_full"
    assert_alive(net, alice)


def test_live_user_never_gets_queue_full() -> None:
    net = Net(make_hub(queue_size=2))
    alice, bob = net.connect("alice"), net.connect("bob")
    net.send_numbered(alice, "bob", 5)
    assert net.seqs(bob) == [1, 2, 3, 4, 5]
    assert net.hub.stats(T0)["rejected_queue_full"] == 0


def test_rate_limited_message_is_not_processed() -> None:
    net = Net(make_hub(rate_limit=3))
    conn = net.connect("alice")
    net.take(conn)
    for n in range(3):
        assert net.reply(conn, {"type": "ping", "id": n}, T0 + n * 0.1)["type"] == "pong"
    reply = net.reply(conn, {"type": "send", "id": "over", "to": "bob", "data": 1}, T0 + 0.5)
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "rate_limited", "over")
    stats = net.hub.stats(T0 + 0.5)
    assert stats["rate_limited"] == 1 and stats["retained_messages"] == 0
    # A new one-second window: processed again.
    assert net.reply(conn, {"type": "send", "id": "later", "to": "bob", "data": 1}, T0 + 1.0)["type"] == "ack"
    # The limit is per connection.
    other = net.connect("alice", T0 + 0.5)
    net.take(other)
    assert net.reply(other, {"type": "ping", "id": 1}, T0 + 0.5)["type"] == "pong"


def test_rate_limit_zero_means_no_limit() -> None:
    net = Net(make_hub(rate_limit=0))
    conn = net.connect("alice")
    for n in range(3000):
        net.handle(conn, {"type": "ping", "id": n})
    assert all(frame["type"] != "error" for frame in net.take(conn))


def test_crash_on_gives_internal_error_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    net = Net(make_hub(faults="crash_on=echo"))
    conn = net.connect("alice")
    net.take(conn)
    with caplog.at_level(logging.ERROR, logger="socketproof.server"):
        reply = net.reply(conn, {"type": "echo", "id": "e", "data": 1})
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "internal", "e")
    assert any(record.exc_info for record in caplog.records), "the traceback is logged server-side"
    assert_alive(net, conn)
    assert net.hub.stats(T0)["errors_sent"] == 1
    # Without the fault echo works.
    clean = Net(make_hub())
    conn = clean.connect("alice")
    clean.take(conn)
    assert clean.reply(conn, {"type": "echo", "id": "e", "data": 1})["type"] == "echo"


def test_errors_sent_counts_error_frames(net: Net) -> None:
    conn = net.connect("alice")
    for text in ("x", "[]", '{"type": "nope"}'):
        net.handle(conn, text)
    net.handle(conn, {"type": "ping"})
    stats = net.hub.stats(T0)
    assert stats["errors_sent"] == 3
    assert stats["messages_in"] == 4


# -- queues, expiry, sweep, stats --------------------------------------------------


def test_queue_counters_and_expiry_through_now(net: Net) -> None:
    hub = net.hub
    alice = net.connect("alice")
    for n in range(3):
        net.handle(alice, {"type": "send", "id": n, "to": "bob", "data": n}, T0 + n * 10)
    stats = hub.stats(T0 + 25)
    assert (stats["queued_messages"], stats["retained_messages"], stats["expired_messages"]) == (3, 3, 0)
    stats = hub.stats(T0 + 60)  # the first is queue_ttl old
    assert (stats["queued_messages"], stats["retained_messages"], stats["expired_messages"]) == (2, 2, 1)
    stats = hub.stats(T0 + 81)
    assert (stats["queued_messages"], stats["retained_messages"], stats["expired_messages"]) == (0, 0, 3)


def test_delivered_messages_are_retained_but_not_queued_and_not_counted_as_expired(net: Net) -> None:
    hub = net.hub
    alice, bob = net.connect("alice"), net.connect("bob")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1})
    stats = hub.stats(T0)
    assert (stats["queued_messages"], stats["retained_messages"]) == (0, 1)
    hub.close(bob, T0)
    stats = hub.stats(T0 + 61)
    assert (stats["retained_messages"], stats["expired_messages"]) == (0, 0)


def test_sweep_forgets_idle_users_after_queue_ttl(net: Net) -> None:
    hub = net.hub
    alice = net.connect("alice")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1}, T0)
    net.handle(alice, {"type": "update", "id": 2, "base_version": 0, "patch": {"k": 1}}, T0)
    hub.close(alice, T0 + 10)
    assert hub.stats(T0 + 10)["retained_users"] == 2
    hub.sweep(T0 + 65)
    assert set(hub.users) == {"alice"}  # bob's queue expired at T0+60; alice closed at T0+10
    hub.sweep(T0 + 70)
    assert hub.users == {}
    assert hub.stats(T0 + 70)["retained_users"] == 0
    # Forgotten: seq restarts at 1, the document at version 0, resuming is not possible.
    _, frames = net.opening("alice", T0 + 71, last_seq=1)
    assert frames[0]["last_seq"] == 0 and frames[0]["resumed"] is False
    assert frames[0]["gap"] == {"from": 2, "to": None}
    assert frames[1] == {"type": "snapshot", "version": 0, "state": {}}


def test_sweep_keeps_connected_users(net: Net) -> None:
    net.connect("alice")
    net.hub.sweep(T0 + 1000)
    assert set(net.hub.users) == {"alice"}


def test_stats_fields() -> None:
    hub = make_hub()
    net = Net(hub)
    a1, a2, b = net.connect("alice"), net.connect("alice"), net.connect("bob")
    net.handle(a1, {"type": "ping", "id": 1}, T0 + 2)
    net.handle(a1, {"type": "oops", "id": 1}, T0 + 2)
    stats = hub.stats(T0 + 2.5)
    assert set(stats) == {
        "connections",
        "users",
        "registry_entries",
        "retained_users",
        "queued_messages",
        "retained_messages",
        "retained_bytes",
        "expired_messages",
        "rejected_queue_full",
        "rejected_retention_full",
        "heartbeat_timeouts",
        "auth_failures",
        "errors_sent",
        "rate_limited",
        "messages_in",
        "messages_out",
        "uptime_s",
        "faults",
    }
    assert stats["connections"] == 3 and stats["users"] == 2 and stats["registry_entries"] == 5
    assert stats["messages_in"] == 2 and stats["errors_sent"] == 1
    assert stats["messages_out"] == 3 * 2 + 2  # welcome + snapshot each, pong, error
    assert stats["uptime_s"] == 2.5 and stats["faults"] == {}
    hub.heartbeat_timeout()
    with pytest.raises(AuthError):
        hub.authenticate(None, T0)
    stats = hub.stats(T0 + 3)
    assert stats["heartbeat_timeouts"] == 1 and stats["auth_failures"] == 1
    for conn in (a1, a2, b):
        hub.close(conn, T0 + 3)
    stats = hub.stats(T0 + 3)
    assert (stats["connections"], stats["users"], stats["registry_entries"]) == (0, 0, 0)
    assert make_hub(faults="drop=0.5,leak_connections").stats(T0)["faults"] == {
        "drop": 0.5,
        "leak_connections": True,
    }


def test_authenticate_counts_failures_and_accepts_good_tokens() -> None:
    hub = make_hub()
    assert hub.authenticate(token("alice"), T0).user == "alice"
    for bad in ("junk", token("alice", exp=T0 - 5)):
        with pytest.raises(AuthError):
            hub.authenticate(bad, T0)
    assert hub.stats(T0)["auth_failures"] == 2


# -- connection slots and close ------------------------------------------------------


def test_reserve_release_and_the_connection_limit() -> None:
    hub = make_hub(max_connections_per_user=2)
    assert hub.reserve("alice") and hub.reserve("alice")
    assert not hub.reserve("alice")
    assert hub.reserve("bob")  # the limit is per user
    hub.release("alice")
    assert hub.reserve("alice")
    conn1, _ = hub.open(Claims("alice", T0 + 60), None, T0)
    conn2, _ = hub.open(Claims("alice", T0 + 60), None, T0)
    assert not hub.reserve("alice")
    hub.close(conn1, T0)
    assert hub.reserve("alice")
    assert not hub.reserve("alice")
    hub.release("alice")
    hub.release("alice")  # more releases than reservations: no negative count
    hub.release("nobody")
    assert hub.users["alice"].reserved == 0
    assert hub.reserve("alice") and not hub.reserve("alice")
    hub.close(conn2, T0)


def test_close_is_idempotent(net: Net) -> None:
    hub = net.hub
    alice, bob = net.connect("alice"), net.connect("bob")
    hub.close(bob, T0)
    hub.close(bob, T0 + 1)
    assert bob.state is State.CLOSED
    stats = hub.stats(T0 + 1)
    assert (stats["connections"], stats["users"], stats["registry_entries"]) == (1, 1, 2)
    net.take(alice)
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1})
    assert net.take(alice) == [{"type": "ack", "id": 1, "seq": 1, "queued": True}]
    assert hub.reserve("bob")


# -- fault switches: each breaks exactly what it says -------------------------------------


def live_pair(faults: str = "", seed: int = 7, **settings: Any) -> tuple[Net, Connection, Connection]:
    net = Net(make_hub(seed=seed, faults=faults, **settings))
    alice, bob = net.connect("alice"), net.connect("bob")
    net.take(alice), net.take(bob)
    return net, alice, bob


def blast(net: Net, sender: Connection, count: int, to: str = "bob") -> list[int]:
    """Send `count` messages; return the acked seqs (every one is acked, faults or not)."""
    seqs = []
    for n in range(count):
        net.handle(sender, {"type": "send", "id": n, "to": to, "data": n})
        seqs.extend(frame["seq"] for frame in net.take(sender) if frame["type"] == "ack")
    return seqs


@pytest.mark.parametrize("faults", ["", "drop=0.5"])
def test_fault_drop(faults: str) -> None:
    net, alice, bob = live_pair(faults)
    assert blast(net, alice, 100) == list(range(1, 101))
    got = net.seqs(bob)
    if not faults:
        assert got == list(range(1, 101))
    else:
        assert 0 < len(got) < 100 and got == sorted(got) and len(set(got)) == len(got)


@pytest.mark.parametrize("faults", ["", "duplicate=0.5"])
def test_fault_duplicate(faults: str) -> None:
    net, alice, bob = live_pair(faults)
    blast(net, alice, 100)
    got = net.seqs(bob)
    assert sorted(set(got)) == list(range(1, 101))
    if not faults:
        assert got == list(range(1, 101))
    else:
        assert 100 < len(got) < 200 and got == sorted(got)


@pytest.mark.parametrize("faults", ["", "reorder=0.5"])
def test_fault_reorder(faults: str) -> None:
    net, alice, bob = live_pair(faults)
    blast(net, alice, 100)
    got = net.seqs(bob)
    if not faults:
        assert got == list(range(1, 101))
    else:
        assert got != sorted(got)
        assert len(set(got)) == len(got) and set(got) <= set(range(1, 101)) and len(got) >= 99


def test_faults_with_the_same_seed_are_reproducible() -> None:
    runs = []
    for _ in range(2):
        net, alice, bob = live_pair("drop=0.3,duplicate=0.3,reorder=0.3", seed=42)
        blast(net, alice, 50)
        runs.append(net.seqs(bob))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("faults", ["", "leak_connections"])
def test_fault_leak_connections(faults: str) -> None:
    net, alice, bob = live_pair(faults)
    net.hub.close(bob, T0)
    stats = net.hub.stats(T0)
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1})
    ack = net.take(alice)[0]
    if not faults:
        assert (stats["connections"], stats["users"], stats["registry_entries"]) == (1, 1, 2)
        assert ack["queued"] is True
    else:
        assert (stats["connections"], stats["users"], stats["registry_entries"]) == (2, 2, 4)
        assert ack["queued"] is False  # "delivered" to a connection that is gone: lost


@pytest.mark.parametrize("faults", ["", "no_queue_expiry"])
def test_fault_no_queue_expiry(faults: str) -> None:
    net = Net(make_hub(faults=faults))
    alice = net.connect("alice")
    net.handle(alice, {"type": "send", "id": 1, "to": "bob", "data": 1}, T0)
    stats = net.hub.stats(T0 + 600)
    _, frames = net.opening("bob", T0 + 600)
    if not faults:
        assert stats["expired_messages"] == 1 and stats["queued_messages"] == 0
        assert frames[0]["replay"] == 0 and len(frames) == 2
    else:
        assert stats["expired_messages"] == 0 and stats["queued_messages"] == 1
        assert frames[0]["replay"] == 1 and frames[0]["gap"] is None


@pytest.mark.parametrize("faults", ["", "queue_unbounded"])
def test_fault_queue_unbounded(faults: str) -> None:
    net = Net(make_hub(faults=faults, queue_size=2))
    alice = net.connect("alice")
    net.take(alice)
    codes = [net.reply(alice, {"type": "send", "id": n, "to": "bob", "data": n}).get("code") for n in range(5)]
    if not faults:
        assert codes == [None, None, "queue_full", "queue_full", "queue_full"]
    else:
        assert codes == [None] * 5
        assert net.hub.stats(T0)["queued_messages"] == 5


@pytest.mark.parametrize("faults", ["", "crash_on=send"])
def test_fault_crash_on_only_that_type(faults: str) -> None:
    net, alice, _ = live_pair(faults)
    reply = net.reply(alice, {"type": "send", "id": 1, "to": "carol", "data": 1})
    assert reply.get("code") == ("internal" if faults else None)
    assert net.reply(alice, {"type": "echo", "id": 2, "data": 2})["type"] == "echo"


@pytest.mark.parametrize("faults", ["", "stale_snapshot"])
def test_fault_stale_snapshot(faults: str) -> None:
    net = Net(make_hub(faults=faults))
    conn = net.connect("alice")
    net.take(conn)
    assert net.reply(conn, {"type": "update", "id": 1, "base_version": 0, "patch": {"a": 1}})["version"] == 1
    assert net.reply(conn, {"type": "update", "id": 2, "base_version": 1, "patch": {"b": 2}})["version"] == 2
    sync = net.reply(conn, {"type": "sync", "id": 3})
    _, frames = net.opening("alice")
    if not faults:
        assert (sync["version"], sync["state"]) == (2, {"a": 1, "b": 2})
        assert (frames[1]["version"], frames[1]["state"]) == (2, {"a": 1, "b": 2})
    else:
        assert (sync["version"], sync["state"]) == (1, {"a": 1})
        assert (frames[1]["version"], frames[1]["state"]) == (1, {"a": 1})


@pytest.mark.parametrize("faults", ["", "accept_expired_tokens"])
def test_fault_accept_expired_tokens(faults: str) -> None:
    net = Net(make_hub(faults=faults))
    expired = token("alice", exp=T0 - 60)
    conn = net.connect("alice", exp=T0 + 5)
    net.take(conn)
    reply = net.reply(conn, {"type": "refresh", "id": 1, "token": expired})
    if not faults:
        with pytest.raises(AuthError) as caught:
            net.hub.authenticate(expired, T0)
        assert caught.value.code == "token_expired"
        assert reply["code"] == "token_expired" and conn.token_exp == T0 + 5
    else:
        assert net.hub.authenticate(expired, T0).user == "alice"
        assert reply == {"type": "refreshed", "id": 1, "exp": T0 - 60}


@pytest.mark.parametrize("faults", ["", "accept_any_signature"])
def test_fault_accept_any_signature(faults: str) -> None:
    net = Net(make_hub(faults=faults))
    forged = token("alice", key="attacker-key-0123456789-0123456789-01")
    conn = net.connect("alice")
    net.take(conn)
    reply = net.reply(conn, {"type": "refresh", "id": 1, "token": forged})
    if not faults:
        with pytest.raises(AuthError) as caught:
            net.hub.authenticate(forged, T0)
        assert caught.value.code == "invalid_token"
        assert reply["code"] == "invalid_token"
    else:
        assert net.hub.authenticate(forged, T0).user == "alice"
        assert reply["type"] == "refreshed"


def resumed_replay(faults: str, queued: int) -> tuple[dict[str, Any], list[int], list[int]]:
    """bob saw seq 1 live, went away while `queued` more arrived, and resumes with last_seq=1:
    (welcome, replayed seqs, seqs of the live message sent after the replay)."""
    net, alice, bob = live_pair(faults)
    blast(net, alice, 1)
    assert net.seqs(bob) == [1]
    net.hub.close(bob, T0)
    blast(net, alice, queued)
    back, frames = net.opening("bob", T0 + 1, last_seq=1)
    welcome, replayed = frames[0], [frame["seq"] for frame in frames[2:]]
    assert welcome["replay"] == len(replayed)  # the welcome counts what is really sent
    net.handle(alice, {"type": "send", "id": "live", "to": "bob", "data": "live"}, T0 + 1)
    return welcome, replayed, net.seqs(back)


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ("", [2, 3, 4, 5]),
        ("replay_reorder", [3, 2, 4, 5]),
        ("replay_drop", [3, 4, 5]),
        ("replay_duplicate", [2, 2, 3, 4, 5]),
    ],
)
def test_replay_faults_touch_only_the_replay(faults: str, expected: list[int]) -> None:
    welcome, replayed, live = resumed_replay(faults, 4)
    assert replayed == expected
    assert (welcome["resumed"], welcome["gap"], welcome["last_seq"]) == (True, None, 5)  # the welcome is honest
    assert live == [6]  # live traffic after the replay is untouched


@pytest.mark.parametrize("faults", ["replay_reorder", "replay_duplicate"])
def test_replay_faults_leave_an_empty_replay_alone(faults: str) -> None:
    assert resumed_replay(faults, 0)[1:] == ([], [2])
