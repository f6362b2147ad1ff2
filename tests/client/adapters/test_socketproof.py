"""The socketproof adapter (docs/protocol.md as a session), with literal frames from the spec.

No socket: frames in, events out. The JSON shortcuts (`dumps`/`loads`) must give what the
json module gives, since every request and reply goes through them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.adapter import (
    ALL_CAPABILITIES,
    BOUND_CHANNEL,
    SUBSCRIBE,
    Delivery,
    Failed,
    Push,
    Ready,
    Reply,
    ResumeInfo,
    SessionContext,
    Stamp,
    StateChange,
    UnsupportedOperation,
    stamped_payload,
)
from client.adapters import AdapterSettings
from client.adapters.socketproof import SocketproofAdapter, SocketproofSession, dumps, loads
from client.errors import ProtocolError

WELCOME = (
    '{"type":"welcome","protocol":1,"conn_id":"c-7","user":"alice","heartbeat":{"interval":0.2,"timeout":0.3},'
    '"limits":{"queue_size":100},"last_seq":4,"replay":0,"resumed":false,"gap":null,"token_exp":1900000000}'
)
SNAPSHOT = '{"type":"snapshot","version":3,"state":{"color":"red"}}'


def session(identity: str = "alice", *, token: str | None = "tok", resume_after: Any = None) -> SocketproofSession:
    return SocketproofAdapter().session(SessionContext(identity, "alice-1", token, resume_after))


def welcome(**fields: Any) -> str:
    return dumps({**json.loads(WELCOME), **fields})


def opened(**welcome_fields: Any) -> SocketproofSession:
    """A session past its start-up (welcome + snapshot, nothing to replay)."""
    s = session()
    assert s.receive(welcome(**welcome_fields)) == []
    events = s.receive(SNAPSHOT)
    assert isinstance(events[-1], Ready)
    return s


# -- the adapter and the upgrade ------------------------------------------------------------


def test_the_adapter_has_every_capability_but_rooms_and_takes_its_path_from_ws_path() -> None:
    adapter = SocketproofAdapter()
    assert adapter.name == "socketproof" and adapter.default_path == "/ws"
    assert adapter.capabilities == ALL_CAPABILITIES - {SUBSCRIBE, BOUND_CHANNEL}  # its channels are users
    assert SocketproofAdapter(AdapterSettings({"ws_path": "/live"})).default_path == "/live"
    assert SocketproofAdapter(AdapterSettings({"ws_path": ""})).default_path == "/ws"


def test_handshake_sends_the_token_and_asks_to_resume_only_when_told() -> None:
    fresh = session().handshake()
    assert (fresh.path, fresh.query, fresh.headers) == ("/ws", {}, {"Authorization": "Bearer tok"})
    assert fresh.subprotocols == ()
    resumed = session(resume_after=12).handshake()
    assert resumed.query == {"last_seq": "12"}
    assert session(resume_after=0).handshake().query == {"last_seq": "0"}
    assert session(token=None).handshake().headers == {}


def test_the_server_speaks_first_and_there_is_no_goodbye() -> None:
    s = session()
    assert s.start() == [] and s.goodbye() == []
    assert s.ready_without_greeting() is None  # the base's default: wait for the welcome


# -- start-up: welcome, snapshot, replay ----------------------------------------------------


def test_welcome_then_snapshot_is_ready_with_what_the_welcome_announced() -> None:
    s = session("someone-else")
    assert s.receive(WELCOME) == []  # nothing is ready after the welcome alone
    state, ready = s.receive(SNAPSHOT)
    assert state == StateChange("snapshot", 3, state={"color": "red"})
    assert isinstance(ready, Ready)
    assert ready.info == json.loads(WELCOME)
    assert ready.conn_id == "c-7"
    assert ready.channels == ("alice",)  # the welcome's user, not the identity asked for
    assert ready.heartbeat == (0.2, 0.3)
    assert ready.resume == ResumeInfo(requested=None, server_last=4, replay=0, resumed=False, gap=None)
    assert ready.replayed == []
    assert ready.extra == {"snapshot": json.loads(SNAPSHOT)}


def test_replay_of_n_gives_n_replayed_deliveries_then_ready_with_the_resume() -> None:
    stamp = Stamp("bob-1", "alice", 5, 1700000000.25)
    s = session(resume_after=2)
    assert s.receive(welcome(replay=2, last_seq=4, resumed=False, gap={"from": 3, "to": 3})) == []
    assert s.receive(SNAPSHOT) == [StateChange("snapshot", 3, state={"color": "red"})]  # not ready yet
    first = '{"type":"message","seq":3,"from":"bob","id":"m-3","data":"' + stamped_payload(stamp, 60) + '"}'
    (delivery,) = s.receive(first)
    assert delivery == Delivery("alice", stamp, json.loads(first), 3, True, "m-3")
    notice = '{"type":"notice","text":"not part of the replay"}'
    assert s.receive(notice) == [Push(json.loads(notice), "notice")]  # kept, and still replaying
    second = '{"type":"message","seq":4,"from":"bob","id":"m-4","data":{"n":2}}'
    delivery, ready = s.receive(second)
    assert delivery == Delivery("alice", None, json.loads(second), 4, True, "m-4")  # no stamp in it
    assert isinstance(ready, Ready)
    assert ready.resume == ResumeInfo(requested=2, server_last=4, replay=2, resumed=False, gap=(3, 3))
    assert ready.replayed == [json.loads(first), json.loads(second)]
    echo = '{"type":"echo","id":"e-1","data":1,"ts":5}'
    assert s.receive(echo) == [Reply("e-1", json.loads(echo))]  # live from here on


@pytest.mark.parametrize(
    ("heartbeat", "expected"),
    [({"interval": 15, "timeout": 10}, (15.0, 10.0)), (None, None), ({"interval": 15}, None),
     ({"interval": "15", "timeout": 10}, None), ("15", None)],
)
def test_heartbeat_is_announced_only_when_both_numbers_are_there(heartbeat: Any, expected: Any) -> None:
    s = session()
    s.receive(welcome(heartbeat=heartbeat))
    assert s.receive(SNAPSHOT)[-1].heartbeat == expected


def test_a_welcome_without_a_user_keeps_the_identity_as_the_channel() -> None:
    s = session("carol")
    fields = json.loads(WELCOME)
    del fields["user"]
    s.receive(dumps(fields))
    assert s.receive(SNAPSHOT)[-1].channels == ("carol",)


def test_an_error_instead_of_the_welcome_fails_with_its_code() -> None:
    frame = '{"type":"error","code":"too_many_connections","message":"5 already open"}'
    (failed,) = session().receive(frame)
    assert isinstance(failed, Failed) and isinstance(failed.error, ProtocolError)
    assert (failed.error.code, failed.error.message) == ("too_many_connections", "5 already open")
    assert failed.error.frame == json.loads(frame)


@pytest.mark.parametrize("frame", ['{"type":"echo","id":"1","data":1}', SNAPSHOT, '{"no_type":1}'])
def test_another_frame_instead_of_the_welcome_fails_as_unexpected(frame: str) -> None:
    (failed,) = session().receive(frame)
    assert isinstance(failed, Failed)
    assert failed.error.code == "unexpected_frame"  # type: ignore[attr-defined]
    assert str(failed.error).startswith("unexpected_frame: expected welcome, got ")


def test_another_frame_instead_of_the_snapshot_fails_as_unexpected() -> None:
    s = session()
    s.receive(WELCOME)
    (failed,) = s.receive('{"type":"message","seq":1,"data":1}')
    assert isinstance(failed, Failed)
    assert str(failed.error) == "unexpected_frame: expected snapshot, got 'message'"


# -- live frames ----------------------------------------------------------------------------


def test_replies_are_matched_by_id() -> None:
    s = opened()
    for frame in ('{"type":"echo","id":"e-1","data":{"x":[1,2]},"ts":1}', '{"type":"pong","id":7,"ts":1}',
                  '{"type":"refreshed","id":"r","exp":2}'):
        msg = json.loads(frame)
        assert s.receive(frame) == [Reply(msg["id"], msg)]


def test_an_ack_with_seq_is_a_reply_carrying_the_seq() -> None:
    s = opened()
    frame = '{"type":"ack","id":"bob-1:alice:1","seq":9,"queued":false}'
    assert s.receive(frame) == [Reply("bob-1:alice:1", json.loads(frame), None, 9)]
    (reply,) = s.receive('{"type":"ack","id":"x","seq":"9"}')
    assert reply.seq is None  # not a number: no seq


def test_an_ack_with_version_is_a_state_change_and_a_reply() -> None:
    s = opened()
    frame = '{"type":"ack","id":"u-1","version":4}'
    assert s.receive(frame) == [StateChange("ack", 4, corr="u-1"), Reply("u-1", json.loads(frame))]


def test_a_sync_snapshot_is_a_state_change_and_a_reply() -> None:
    s = opened()
    frame = '{"type":"snapshot","id":"s-1","version":5,"state":{"a":1}}'
    assert s.receive(frame) == [StateChange("snapshot", 5, state={"a": 1}), Reply("s-1", json.loads(frame))]


def test_an_error_with_an_id_is_a_reply_carrying_a_protocol_error() -> None:
    s = opened()
    frame = '{"type":"error","code":"version_conflict","id":"u-2","current_version":5,"message":"stale"}'
    (reply,) = s.receive(frame)
    assert (reply.corr, reply.body) == ("u-2", json.loads(frame))
    assert isinstance(reply.error, ProtocolError)
    assert (reply.error.code, reply.error.message, reply.error.frame["current_version"]) == (
        "version_conflict", "stale", 5)


def test_a_message_is_a_delivery_with_the_stamp_found_in_its_data() -> None:
    s = opened()
    stamp = Stamp("bob-1", "alice", 12, 1700000000.5)
    frame = dumps({"type": "message", "seq": 10, "from": "bob", "id": "bob-1:alice:12",
                   "data": "padding " + stamped_payload(stamp, 80)})
    (delivery,) = s.receive(frame)  # its `id` is the sender's: never a reply
    assert delivery == Delivery("alice", stamp, json.loads(frame), 10, False, "bob-1:alice:12")
    (plain,) = s.receive('{"type":"message","seq":"x","from":"bob","id":"m","data":"no stamp here"}')
    assert (plain.stamp, plain.seq, plain.replay) == (None, None, False)


def test_a_patch_is_a_state_change_and_a_push() -> None:
    s = opened()
    frame = '{"type":"patch","version":6,"patch":{"color":"blue"}}'
    msg = json.loads(frame)
    assert s.receive(frame) == [StateChange("patch", 6, patch={"color": "blue"}), Push(msg, "patch")]


def test_an_error_without_an_id_is_a_push_with_its_code() -> None:
    s = opened()
    frame = '{"type":"error","code":"bad_json","message":"not JSON"}'
    assert s.receive(frame) == [Push(json.loads(frame), "error", "bad_json")]


def test_any_other_frame_without_an_id_is_a_push_named_by_its_type() -> None:
    s = opened()
    frame = dumps({"type": "t" * 100})
    assert s.receive(frame) == [Push(json.loads(frame), "t" * 40)]  # bounded kind names


@pytest.mark.parametrize("frame", ["{not json", "[1, 2]", '"text"', "", "null"])
def test_text_that_is_not_a_json_object_is_an_invalid_push(frame: str) -> None:
    for s in (session(), opened()):  # during start-up too: never a crash
        assert s.receive(frame) == [Push({"type": "_invalid", "binary": False, "raw": frame}, "invalid")]


DEEP = "[" * 20_000 + "]" * 20_000
"""Valid JSON nested past the decoder's recursion limit."""


@pytest.mark.parametrize("frame", [DEEP, '{"type":"ack","id":"a","x":' + DEEP + "}"])
def test_json_nested_too_deeply_is_an_invalid_push_not_a_recursion_error(frame: str) -> None:
    """Issue 24, finding 8: a hostile server's "[[[[..." raised RecursionError in the receive thread."""
    for s in (session(), opened()):
        assert s.receive(frame) == [Push({"type": "_invalid", "binary": False, "raw": frame}, "invalid")]


@pytest.mark.parametrize("frame", ['{"type":"ack","id":[1],"seq":3}', '{"type":"error","id":{},"code":"x"}',
                                   '{"type":"ack","id":{"a":1},"version":2}'])
def test_an_id_that_cannot_be_a_correlation_key_is_a_push_never_a_reply(frame: str) -> None:
    """A list or object id would raise TypeError where the client looks replies up by id."""
    events = opened().receive(frame)
    assert len(events) == 1 and isinstance(events[0], Push), events
    assert events[0].body == json.loads(frame)


def test_a_binary_frame_is_an_invalid_push() -> None:
    assert opened().receive(b"\x00\xffbin") == [
        Push({"type": "_invalid", "binary": True, "raw": "\x00\ufffdbin"}, "invalid")]


# -- outbound -------------------------------------------------------------------------------


def test_requests_get_unique_ids_and_keep_one_given() -> None:
    s, other = session(), session()
    corr, frame = s.request("echo", {"k": [1]})
    assert json.loads(frame) == {"type": "echo", "k": [1], "id": corr}
    corr2, frame2 = s.request("echo", "plain data")
    assert json.loads(frame2) == {"type": "echo", "data": "plain data", "id": corr2}
    corr3, frame3 = s.request("ping", None)
    assert json.loads(frame3) == {"type": "ping", "id": corr3}
    assert s.request("send", {"id": "m-1", "to": "bob", "data": 1}) == (
        "m-1", '{"type":"send","id":"m-1","to":"bob","data":1}')
    ids = [corr, corr2, corr3] + [s.request("ping", None)[0] for _ in range(500)] + [s.next_id() for _ in range(500)]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) for i in ids)
    assert not set(ids) & {other.next_id() for _ in range(1000)}  # a random prefix per session


def test_publish_is_a_send_whose_id_is_unique_per_sender_channel_and_counter() -> None:
    s = session()
    stamp = Stamp("alice-1", "bob", 3, 1700000000.0)
    payload = stamped_payload(stamp, 64)
    corr, frame = s.publish("bob", stamp, payload)
    assert corr == "alice-1:bob:3"
    assert json.loads(frame) == {"type": "send", "id": corr, "to": "bob", "data": payload}
    assert s.publish("bob", stamp, payload)[0] == corr  # the same stamp: the same id (a resend is recognisable)
    keys = {s.publish(channel, Stamp(sender, channel, counter, 0.0), "x")[0]
            for sender in ("a-1", "a-2") for channel in ("bob", "carol") for counter in (1, 2, 10)}
    assert len(keys) == 12


def test_subscribe_is_unsupported_a_connection_receives_its_own_user() -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        session().subscribe("room")
    assert "socketproof adapter has no 'subscribe" in str(caught.value)


# -- the JSON shortcuts -----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=5))
def test_dumps_and_loads_match_json(msg: dict) -> None:
    text = dumps(msg)
    assert text == json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    assert repr(loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize(
    "text",
    ["", "[1]", "  {}", "{} ", "{", '{"a":1}x', "\ufeff{}", '{"a":"\ud800"}', "nope", '{"a":NaN}', '{"a":1}{}',
     '{"a": 1, "a": 2}', '{"a":1e400}'],
)
def test_loads_fails_and_succeeds_where_json_does(text: str) -> None:
    try:
        expected: tuple[str, Any] = ("ok", json.loads(text))
    except ValueError as error:
        expected = ("error", type(error))
    try:
        got: tuple[str, Any] = ("ok", loads(text))
    except ValueError as error:
        got = ("error", type(error))
    assert got[0] == expected[0]
    assert repr(got[1]) == repr(expected[1])


def test_dumps_reports_circular_messages_as_json_does() -> None:
    msg: dict = {"type": "echo"}
    msg["data"] = msg
    with pytest.raises(ValueError, match="Circular"):
        dumps(msg)
    with pytest.raises(TypeError):
        dumps({"data": object()})
