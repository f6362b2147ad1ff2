"""client/recording.py: the hook calls each adapter event means, and the fate of each publish."""

from __future__ import annotations

from client.adapter import Delivery, Ready, Reply, ResumeInfo, Stamp, StateChange
from client.errors import ProtocolError, Timeout
from client.recording import Recording
from tests.client.support import FakeRecorder

STAMP = Stamp("alice-1", "room-1", 1, 1700000000.5)
OTHER = Stamp("alice-1", "room-1", 2, 1700000001.5)


def recording() -> tuple[Recording, FakeRecorder]:
    hooks = FakeRecorder()
    return Recording(hooks), hooks


def test_ready_records_the_connection_then_its_implicit_channels() -> None:
    rec, hooks = recording()
    resume = ResumeInfo(requested=3)
    rec.opened(Ready(conn_id="c1", channels=("u1", "u2"), heartbeat=(1.0, 2.0), resume=resume), frozenset({"x"}))
    assert hooks.names() == ["opened", "subscribed", "subscribed"]
    opened = dict(hooks.named("opened")[0][1:])
    assert opened == {"conn_id": "c1", "channels": ("u1", "u2"), "heartbeat": (1.0, 2.0), "resume": resume,
                      "capabilities": frozenset({"x"})}
    assert [args[0] for args in hooks.named("subscribed")] == ["u1", "u2"]


def test_a_publish_is_acked_refused_or_left_unanswered() -> None:
    rec, hooks = recording()
    rec.published(STAMP)
    rec.awaiting_ack("p1", STAMP)
    rec.replied(Reply("p1", seq=7))
    rec.awaiting_ack("p2", OTHER)
    rec.replied(Reply("p2", error=ProtocolError("queue_full", "full")))
    rec.unanswered("p2", Timeout("late"))  # its reply already said so: recorded once
    rec.awaiting_ack("p3", STAMP)
    rec.unanswered("p3", Timeout("late"))
    assert hooks.named("acked")[0][:2] == (STAMP, 7)
    assert hooks.named("error")[0][0] == "queue_full"
    assert [args[:2] for args in hooks.named("publish_failed")] == [(OTHER, "queue_full"), (STAMP, "Timeout")]


def test_a_reply_with_an_unhashable_key_is_not_a_publish() -> None:
    rec, hooks = recording()
    rec.awaiting_ack("p1", STAMP)
    rec.replied(Reply(["not", "hashable"]))
    assert hooks.names() == []


def test_the_close_is_recorded_once_after_opened_and_fails_what_still_waits() -> None:
    rec, hooks = recording()
    rec.closed(1006, "", "abrupt")  # never opened: nothing to close
    assert hooks.names() == []
    rec.opened(Ready(), frozenset())
    rec.awaiting_ack("p1", STAMP)
    rec.closed(1000, "bye", "client")
    rec.closed(1000, "bye", "client")
    assert hooks.names() == ["opened", "closed", "publish_failed"]
    assert hooks.named("publish_failed")[0][:2] == (STAMP, "closed")
    rec.opened(Ready(), frozenset())
    rec.connecting()  # a new connection before the old one's close was heard
    rec.closed(1000, "", "server")
    assert hooks.names().count("closed") == 1


def test_deliveries_and_state_changes() -> None:
    rec, hooks = recording()
    rec.delivered(Delivery(None, STAMP, seq=4, message_id="m"))
    rec.delivered(Delivery("room-9", None))
    rec.delivered(Delivery(None, None))
    rec.state(StateChange("patch", 3, patch={"a": 1}, corr="u1"))
    assert [args[:4] for args in hooks.named("delivered")] == [
        ("room-1", STAMP, 4, "m"), ("room-9", None, None, None), ("", None, None, None)]
    assert hooks.named("state")[0][:5] == ("patch", 3, None, {"a": 1}, "u1")


def test_an_unstamped_delivery_without_an_id_is_known_by_its_body() -> None:
    from history import content_key

    rec, hooks = recording()
    rec.delivered(Delivery("feed", None, {"tick": 1}))
    rec.delivered(Delivery("feed", None, {"tick": 1}, message_id="b-1"))  # the adapter's id wins
    rec.delivered(Delivery("feed", STAMP, {"tick": 1}))  # a stamp is judged by its stamp
    assert [args[3] for args in hooks.named("delivered")] == [content_key({"tick": 1}), "b-1", None]
