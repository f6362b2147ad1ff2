"""The Socket.IO adapter session, fed literal frames from the Socket.IO v5 and Engine.IO v4 specs."""

from __future__ import annotations

import pytest

from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    RESUME,
    ROUND_TRIP,
    SUBSCRIBE,
    Delivery,
    Failed,
    KeepAlive,
    Push,
    Ready,
    Reply,
    Send,
    SessionContext,
    Stamp,
    UnsupportedOperation,
    stamped_payload,
)
from client.adapters import AdapterError, AdapterSettings, available, build_adapter
from client.adapters.socketio import OPTIONS, SocketIOAdapter, SocketIOSession, State

# The Engine.IO v4 spec's open packet (pingInterval 25 s, pingTimeout 5 s).
OPEN = (
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,'
    '"maxPayload":1000000}'
)


def session(token: str | None = "T", **values: str) -> SocketIOSession:
    adapter = build_adapter("socketio", AdapterSettings(values=values))
    return adapter.session(SessionContext("alice", "alice#1", token=token))


def ready(token: str | None = "T", **values: str) -> SocketIOSession:
    s = session(token, **values)
    s.receive(OPEN)
    namespace = values.get("socketio_namespace", "/")
    prefix = "" if namespace == "/" else namespace + ","
    answer = f'40{prefix}{{"sid":"wZX3oN0bSVIhsaknAAAI"}}'
    events = s.receive(answer)
    assert isinstance(events[0], Ready), events
    return s


def test_registered_with_its_options() -> None:
    assert available()["socketio"].ADAPTER is SocketIOAdapter
    defaults = {option.flag: option.default for option in OPTIONS}
    assert defaults["--socketio-path"] == "/socket.io/"
    assert defaults["--socketio-namespace"] == "/"
    assert defaults["--socketio-event"] == "message"
    assert defaults["--socketio-join-event"] == "join"
    assert defaults["--socketio-echo-event"] == "echo"
    assert defaults["--socketio-auth"] == ""


def test_capabilities_without_resume_or_server_seq() -> None:
    adapter = build_adapter("socketio", AdapterSettings())
    assert adapter.capabilities == {ROUND_TRIP, PUBLISH_ACK, SUBSCRIBE, HEARTBEAT}
    assert RESUME not in adapter.capabilities


def test_empty_echo_event_means_no_round_trip() -> None:
    adapter = build_adapter("socketio", AdapterSettings(values={"socketio_echo_event": ""}))
    assert ROUND_TRIP not in adapter.capabilities
    s = adapter.session(SessionContext("a", "a#1", token="T"))
    with pytest.raises(UnsupportedOperation):
        s.request("echo", "x")


def test_handshake_is_the_websocket_transport() -> None:
    s = session(socketio_path="/chat/io/")
    handshake = s.handshake()
    assert handshake.path == "/chat/io/"
    assert handshake.query == {"EIO": "4", "transport": "websocket"}
    assert s.start() == ()


@pytest.mark.parametrize(
    ("bad", "text"),
    [
        ({"socketio_auth": "{not json"}, "--socketio-auth is not a JSON object"),
        ({"socketio_auth": "{}x"}, "--socketio-auth is not a JSON object"),
        ({"socketio_namespace": "admin"}, "--socketio-namespace"),
        ({"socketio_path": "socket.io"}, "--socketio-path"),
    ],
)
def test_bad_options_are_one_line(bad: dict[str, str], text: str) -> None:
    with pytest.raises(AdapterError, match=text):
        build_adapter("socketio", AdapterSettings(values=bad))


def test_open_packet_answers_with_connect_carrying_the_token() -> None:
    s = session()
    assert s.receive(OPEN) == [Send('40{"token":"T"}')]
    assert s.state is State.CONNECTING


def test_connect_without_token_has_no_payload() -> None:
    assert session(token=None).receive(OPEN) == [Send("40")]


def test_auth_option_replaces_the_minted_token() -> None:
    assert session(socketio_auth='{"key": "k1", "n": 2}').receive(OPEN) == [Send('40{"key":"k1","n":2}')]
    assert session(socketio_auth="opaque-token").receive(OPEN) == [Send('40{"token":"opaque-token"}')]


def test_connect_answer_is_ready_with_the_heartbeat() -> None:
    s = session()
    s.receive(OPEN)
    [event] = s.receive('40{"sid":"wZX3oN0bSVIhsaknAAAI"}')
    assert isinstance(event, Ready)
    assert event.conn_id == "wZX3oN0bSVIhsaknAAAI"
    assert event.heartbeat == (25.0, 5.0)
    assert event.channels == ()
    assert event.extra["engineio_sid"] == "lv_VI97HAXpY6yYWAAAC"
    assert s.state is State.READY


def test_custom_namespace_connect() -> None:
    s = session(socketio_namespace="/admin")
    assert s.receive(OPEN) == [Send('40/admin,{"token":"T"}')]
    [event] = s.receive('40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}')
    assert isinstance(event, Ready) and event.conn_id == "oSO0OpakMV_3jnilAAAA"


def test_recovery_pid_is_kept_but_not_used() -> None:
    s = session()
    s.receive(OPEN)
    [event] = s.receive('40{"sid":"a","pid":"p1"}')
    assert isinstance(event, Ready) and event.extra["pid"] == "p1" and event.resume is None


def test_connect_error_fails_with_the_servers_message() -> None:
    s = session()
    s.receive(OPEN)
    [event] = s.receive('44{"message":"Not authorized"}')
    assert isinstance(event, Failed)
    assert event.error.code == "connect_error"
    assert "Not authorized" in str(event.error)
    assert "\n" not in str(event.error)
    assert s.state is State.CLOSED


@pytest.mark.parametrize(
    "first",
    ['{"type":"welcome","user":"u"}', "hello", "", "40", "2", b"\x00\x01", '0{"no":"sid"}', "0[1,2]"],
)
def test_a_server_that_is_not_socketio_fails_at_once(first: str | bytes) -> None:
    [event] = session().receive(first)
    assert isinstance(event, Failed)
    assert event.error.code == "unexpected_frame"


def test_ping_is_a_keepalive_answered_with_pong() -> None:
    s = ready()
    assert s.receive("2") == [KeepAlive(), Send("3")]


def test_echo_is_an_emit_with_an_ack_id() -> None:
    s = ready()
    corr, frame = s.request("echo", "foo")
    assert (corr, frame) == (1, '421["echo","foo"]')  # spec: `212["foo"]` inside Engine.IO's `4`
    assert s.receive('431["foo"]') == [Reply(1, "foo")]
    corr2, frame2 = s.request("echo", "bar")
    assert (corr2, frame2) == (2, '422["echo","bar"]')


def test_custom_namespace_emit_and_ack() -> None:
    s = ready(socketio_namespace="/admin", socketio_echo_event="ping_me")
    corr, frame = s.request("echo", "bar")
    assert frame == '42/admin,1["ping_me","bar"]'
    assert s.receive('43/admin,1["bar"]') == [Reply(corr, "bar")]


def test_ack_with_several_or_no_arguments() -> None:
    s = ready()
    assert s.receive('437["a","b"]') == [Reply(7, ["a", "b"])]
    assert s.receive("438[]") == [Reply(8, [])]


def test_ack_error_convention_fails_the_request() -> None:
    [reply] = ready().receive('433[{"error":"room is full"}]')
    assert isinstance(reply, Reply) and reply.corr == 3
    assert reply.error is not None and "room is full" in str(reply.error)


def test_publish_and_subscribe_emit_with_acks() -> None:
    s = ready(socketio_event="chat", socketio_join_event="enter")
    assert s.subscribe("lobby") == (1, '421["enter","lobby"]')
    stamp = Stamp("alice#1", "lobby", 1, 1700000000.5)
    payload = stamped_payload(stamp, 40)
    corr, frame = s.publish("lobby", stamp, payload)
    assert corr == 2
    assert frame == '422["chat",{"room":"lobby","body":"' + payload + '"}]'


def test_room_broadcast_is_a_delivery_with_room_and_stamp() -> None:
    s = ready()
    stamp = Stamp("bob#3", "lobby", 12, 1700000000.25)
    frame = '42["message",{"room":"lobby","body":"' + stamped_payload(stamp, 50) + '"}]'
    [event] = s.receive(frame)
    assert isinstance(event, Delivery)
    assert event.channel == "lobby"
    assert event.stamp == stamp


def test_a_broadcast_of_a_bare_string_still_carries_its_stamp() -> None:
    stamp = Stamp("bob#3", "lobby", 2, 1.5)
    [event] = ready().receive('42["message","' + stamp.encode() + '"]')
    assert isinstance(event, Delivery) and event.channel is None and event.stamp == stamp


def test_other_events_are_pushes_and_server_acks_are_answered() -> None:
    s = ready()
    assert s.receive('42["hey","Jude"]') == [Push(["hey", "Jude"], kind="event")]
    events = s.receive('4213["foo"]')
    assert events == [Push(["foo"], kind="event"), Send("4313[]")]


def test_packets_of_another_namespace_are_not_ours() -> None:
    s = ready()
    [event] = s.receive('42/admin,["message",{"room":"r","body":"sp1|a|r|1|1.0|"}]')
    assert isinstance(event, Push) and event.kind == "other_namespace"


def test_binary_event_is_not_supported_and_its_attachments_are_skipped() -> None:
    s = ready()
    [event] = s.receive('452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert isinstance(event, Push) and event.kind == "other_namespace"
    assert s.receive(b"\x01\x02") == [] and s.receive(b"\x03\x04") == []  # its two attachments
    s2 = ready()
    [event] = s2.receive('451-["baz",{"_placeholder":true,"num":0}]')
    assert isinstance(event, Push) and event.kind == "binary_unsupported"
    assert "not supported" in event.body
    assert s2.receive(b"\x01\x02\x03\x04") == []  # the attachment
    [extra] = s2.receive(b"\x05")  # an unannounced binary frame
    assert isinstance(extra, Push) and extra.kind == "binary_unsupported"


def test_binary_ack_fails_its_request_clearly() -> None:
    s = ready()
    [reply] = s.receive('461-15["bar",{"_placeholder":true,"num":0}]')
    assert isinstance(reply, Reply) and reply.corr == 15
    assert reply.error is not None and reply.error.code == "binary_unsupported"
    assert s.receive(b"\x01\x02\x03\x04") == []


def test_server_disconnect_and_engineio_close_end_the_session() -> None:
    [event] = ready().receive("41")
    assert isinstance(event, Failed) and event.error.code == "socketio_disconnect"
    s = ready()
    [event] = s.receive("1")
    assert isinstance(event, Failed) and event.error.code == "socketio_close"
    assert s.receive("41") == []


def test_goodbye_is_a_disconnect_once_connected() -> None:
    assert session().goodbye() == ()
    assert ready().goodbye() == ("41",)
    s = ready(socketio_namespace="/admin")
    assert s.goodbye() == ("41/admin,",)
    assert s.goodbye() == ()


@pytest.mark.parametrize(
    "bad",
    ["x", "4", "4garbage", '42{"not":"a list"}', "42[]", "42[1]", "43x", "49", "4-", "9", '4{"a":1}', "4/admin",
     "431[" + "9" * 200 + "]"],
)
def test_unreadable_frames_after_start_up_are_pushes_not_exceptions(bad: str) -> None:
    events = ready().receive(bad)
    assert all(isinstance(event, (Push, Reply, Failed)) for event in events), events
    assert not any(isinstance(event, Delivery) for event in events)
