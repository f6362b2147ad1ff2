"""docs/examples/feed_adapter.py, frames in and events out, with literal frames of apps/feed_app.py's
protocol (its module docstring). Loaded as `--protocol path:Class` loads it."""

from __future__ import annotations

import json

import pytest

from client.adapter import Adapter, AdapterSession, Delivery, Push, Ready, Reply, SessionContext, UnsupportedOperation
from client.adapters import load_adapter_class
from client.errors import ProtocolError
from tests.socketproof.support import ROOT

FeedAdapter = load_adapter_class(f"{ROOT}/docs/examples/feed_adapter.py:FeedAdapter")
CONTEXT = SessionContext("alice", "alice-1")


def session(*channels: str) -> AdapterSession:
    return FeedAdapter(None, channels=channels).session(CONTEXT)


def test_it_is_a_plain_subclass_of_the_bases_and_reads_its_channels_from_the_environment(monkeypatch) -> None:
    assert issubclass(FeedAdapter, Adapter) and isinstance(session(), AdapterSession)
    monkeypatch.setenv("FEED_CHANNELS", "a, b,")
    assert FeedAdapter(None).channels == ("a", "b")
    monkeypatch.delenv("FEED_CHANNELS")
    assert FeedAdapter(None).channels == ("feed-0",)


def test_the_urls_channels_are_subscribed_at_the_upgrade() -> None:
    s = session("feed-1", "feed-0")
    hs = s.handshake()
    assert (hs.path, hs.query) == ("/ws/feed", {"channels": "feed-1,feed-0"})
    assert s.ready_without_greeting() == Ready(conn_id="alice-1", channels=("feed-1", "feed-0"))
    assert s.receive('{"op": "subscribed", "channels": ["feed-0", "feed-1"]}') == []  # no one waits for it
    assert session().handshake().query == {}


def test_a_message_is_a_delivery_known_by_the_feeds_id() -> None:
    s = session("feed-0")
    frame = '{"channel":"feed-0","id":"1a2b3c4d-17","seq":17,"data":{"tick":17,"at":1700000000.25}}'
    (d,) = s.receive(frame)
    assert d == Delivery("feed-0", None, json.loads(frame), message_id="1a2b3c4d-17")
    assert d.seq is None  # no SERVER_SEQ claimed
    stamped = '{"channel":"alerts","id":"b-2","seq":1,"data":{"text":"sp1|user-1|alerts|1|1700000000.000000|"}}'
    (d,) = s.receive(stamped)
    assert d.stamp is not None and (d.stamp.sender, d.stamp.counter) == ("user-1", 1) and d.message_id == "b-2"


def test_answers_are_matched_first_in_first_out() -> None:
    s = session("feed-0")
    corr_sub, frame = s.subscribe("alerts")
    assert json.loads(frame) == {"op": "subscribe", "channels": ["alerts"]}
    corr_ping, frame = s.request("echo", None)
    assert json.loads(frame) == {"op": "ping"}
    assert s.receive('{"op": "subscribed", "channels": ["feed-0"]}') == []  # the URL's, first
    (sub,) = s.receive('{"op": "subscribed", "channels": ["alerts", "feed-0"]}')
    assert isinstance(sub, Reply) and sub.corr == corr_sub and sub.error is None
    (pong,) = s.receive('{"op": "pong"}')
    assert pong.corr == corr_ping
    corr_bad, _ = s.subscribe("bad name")
    (refused,) = s.receive('{"op": "error", "reason": "bad channel name \'bad name\'"}')
    assert refused.corr == corr_bad and isinstance(refused.error, ProtocolError) and refused.error.code == "refused"


def test_anything_else_is_a_push_and_clients_do_not_publish() -> None:
    s = session()
    assert s.receive("not json") == [Push({"raw": "not json"}, "invalid")]
    assert s.receive('{"op": "error", "reason": "binary frames are not understood"}')[0].kind == "error"
    assert s.receive('{"op": "unsubscribed", "channels": []}')[0].kind == "unsubscribed"
    with pytest.raises(UnsupportedOperation):
        s.publish("feed-0", None, "x")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedOperation):
        s.request("history", None)
