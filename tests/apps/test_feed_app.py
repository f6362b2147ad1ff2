"""apps/feed_app: a Starlette feed whose backend publishes, on a real uvicorn, and its pure core.

Two subscribers of a channel get the same ids in the same order; POST /api/notify reaches the
channel's subscribers at once (and only with the token); each test switch changes what one
subscriber gets, visibly; the app stops with SIGTERM and leaves nothing behind.
"""

from __future__ import annotations

import json

import pytest
import websocket

from apps.feed_app import BadChannels, Feed, parse_channels, running_app, timer_channels
from tests.apps.support import collect, connect, receive_json, silent


def is_message(frame: dict) -> bool:
    return "op" not in frame


def flush(ws: websocket.WebSocket) -> list[dict]:
    """Everything queued for `ws` before a ping: frames on one connection keep their order."""
    ws.send(json.dumps({"op": "ping"}))
    out = []
    while (frame := receive_json(ws)) != {"op": "pong"}:
        out.append(frame)
        assert len(out) < 1000
    return out


# -- the core, no sockets -----------------------------------------------------------------------


def test_the_core_numbers_each_channel_and_sends_every_subscriber_the_same_frames() -> None:
    feed = Feed(boot="b")
    a, b = feed.connect(), feed.connect()
    feed.subscribe(a, ["x", "y"])
    feed.subscribe(b, ["x"])
    m1, out1 = feed.publish("x", 1)
    m2, out2 = feed.publish("y", 2)
    m3, out3 = feed.publish("x", 3)
    assert (m1["id"], m1["seq"]) == ("b-1", 1) and (m2["id"], m2["seq"]) == ("b-2", 1)
    assert (m3["id"], m3["seq"]) == ("b-3", 2)
    assert [conn for conn, _ in out1] == [a, b] and [conn for conn, _ in out2] == [a]
    assert json.loads(out3[0][1]) == {"channel": "x", "id": "b-3", "seq": 2, "data": 3}
    feed.unsubscribe(b, ["x"])
    assert [conn for conn, _ in feed.publish("x", 4)[1]] == [a]
    feed.disconnect(a)
    assert feed.publish("x", 5)[1] == [] and feed.seqs["x"] == 4 and "x" not in feed.by_channel


def test_the_core_faults_drop_for_the_oldest_connection_only_and_duplicate_for_each() -> None:
    feed = Feed(drop_for_one=2, boot="b")
    a, b = feed.connect(), feed.connect()
    for conn in (a, b):
        feed.subscribe(conn, ["x"])
    got: dict[int, list[int]] = {a: [], b: []}
    for n in range(1, 7):
        for conn, frame in feed.publish("x", n)[1]:
            got[conn].append(json.loads(frame)["seq"])
    assert got == {a: [1, 3, 5], b: [1, 2, 3, 4, 5, 6]} and feed.faults["drop"] == 3
    feed.disconnect(a)  # the role passes to the oldest open connection
    assert feed.victim() == b

    dup = Feed(duplicate_every=3, boot="d")
    c = dup.connect()
    dup.subscribe(c, ["x"])
    seqs = [json.loads(frame)["seq"] for n in range(6) for _, frame in dup.publish("x", n)[1]]
    assert seqs == [1, 2, 3, 3, 4, 5, 6, 6] and dup.faults["duplicate"] == 2


def test_channel_names_are_checked() -> None:
    assert parse_channels("a, b,a") == ["a", "b"] and parse_channels(["feed-0", "t:1"]) == ["feed-0", "t:1"]
    assert timer_channels("2") == ["feed-0", "feed-1"] and timer_channels("a,b") == ["a", "b"]
    for bad in ("a b", "x" * 65, ["ok", 3], 7):
        with pytest.raises(BadChannels):
            parse_channels(bad)


# -- the app on a real socket ---------------------------------------------------------------------


def test_two_subscribers_of_a_channel_get_the_same_ids_in_the_same_order() -> None:
    with running_app(interval=0.02, channels=2) as app:
        first = connect(app.feed_url("feed-0"))
        second = connect(app.feed_url("feed-0", "feed-1"))
        try:
            assert receive_json(first) == {"op": "subscribed", "channels": ["feed-0"]}
            assert receive_json(second) == {"op": "subscribed", "channels": ["feed-0", "feed-1"]}
            seconds = collect(second, is_message, 40)
            on_zero = [m for m in seconds if m["channel"] == "feed-0"]
            assert {m["channel"] for m in seconds} == {"feed-0", "feed-1"}
            firsts = collect(first, is_message, on_zero[-1]["seq"] - 1 + 5)  # it started earlier
            assert {m["channel"] for m in firsts} == {"feed-0"}
            start = [m["id"] for m in firsts].index(on_zero[0]["id"])
            assert [m["id"] for m in firsts[start:start + len(on_zero)]] == [m["id"] for m in on_zero]
            seqs = [m["seq"] for m in firsts]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no repeat
            for got in (firsts, seconds):  # an id is one message: unique on each connection
                assert len({m["id"] for m in got}) == len(got)
            assert all(m["data"]["tick"] == m["seq"] for m in firsts)
        finally:
            first.close()
            second.close()
        app.wait_connections(0)
    assert app.process.poll() == 0


def test_notify_reaches_the_channels_subscribers_at_once_and_only_with_the_token() -> None:
    with running_app(interval=0, api_token="feed-test-token") as app:
        alerts = [connect(app.feed_url("alerts")) for _ in range(2)]
        other = connect(app.feed_url())  # subscribes by message instead
        try:
            for ws in alerts:
                assert receive_json(ws)["op"] == "subscribed"
            other.send(json.dumps({"op": "subscribe", "channels": ["other"]}))
            assert receive_json(other) == {"op": "subscribed", "channels": ["other"]}

            stamp = "sp1|user-1|alerts|1|1700000000.000000|"
            status, answer = app.notify("alerts", {"text": stamp})
            assert status == 200 and answer["seq"] == 1 and answer["subscribers"] == 2
            for ws in alerts:
                assert receive_json(ws) == {"channel": "alerts", "id": answer["id"], "seq": 1, "data": {"text": stamp}}
            assert silent(other, 0.3)

            assert app.notify("alerts", "no token", token="")[0] == 401
            assert app.notify("alerts", "bad token", token="wrong")[0] == 401
            assert app.notify("bad name", "x")[0] == 400
            status, answer = app.notify("other", 2)
            assert receive_json(other)["id"] == answer["id"] and answer["seq"] == 1
            for ws in alerts:
                assert flush(ws) == []  # the refused ones were never published

            other.send(json.dumps({"op": "unsubscribe", "channels": ["other"]}))
            assert receive_json(other) == {"op": "unsubscribed", "channels": []}
            app.notify("other", 3)
            assert flush(other) == []
            assert app.metrics()["feed_published_total"] == 3
        finally:
            for ws in (*alerts, other):
                ws.close()
        app.wait_connections(0)
    assert app.process.poll() == 0


def test_drop_for_one_drops_from_the_oldest_subscriber_only() -> None:
    with running_app(interval=0, drop_for_one=3) as app:
        victim = connect(app.feed_url("c"))
        assert receive_json(victim)["op"] == "subscribed"
        bystander = connect(app.feed_url("c"))
        assert receive_json(bystander)["op"] == "subscribed"
        try:
            for n in range(9):
                assert app.notify("c", n)[0] == 200
            assert [m["seq"] for m in flush(bystander)] == list(range(1, 10))
            assert [m["seq"] for m in flush(victim)] == [1, 2, 4, 5, 7, 8]
            assert app.metrics()['feed_faults_total{kind="drop"}'] == 3
        finally:
            victim.close()
            bystander.close()
    assert app.process.poll() == 0


def test_duplicate_every_sends_every_nth_message_of_a_subscriber_twice() -> None:
    with running_app(interval=0, duplicate_every=4) as app:
        ws = connect(app.feed_url("c"))
        try:
            assert receive_json(ws)["op"] == "subscribed"
            for n in range(8):
                app.notify("c", n)
            frames = flush(ws)
            assert [m["seq"] for m in frames] == [1, 2, 3, 4, 4, 5, 6, 7, 8, 8]
            assert frames[3] == frames[4] and frames[8] == frames[9]  # the same message: same id
            assert app.metrics()['feed_faults_total{kind="duplicate"}'] == 2
        finally:
            ws.close()
    assert app.process.poll() == 0


def test_a_bad_subscription_is_refused_and_the_app_stops_with_clients_still_open() -> None:
    with running_app(interval=0.05) as app:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(app.feed_url("bad!name"))
        assert refused.value.status_code == 403
        ws = connect(app.feed_url("feed-1"))
        assert receive_json(ws)["op"] == "subscribed"
        assert collect(ws, is_message, 2)[0]["channel"] == "feed-1"
        ws.send(b"\x00binary")
        assert collect(ws, lambda m: m.get("op") == "error", 1)
    # left open: SIGTERM still ends the app with exit 0 and frees its port (running_app checks)
    assert app.process.poll() == 0
    ws.close()
