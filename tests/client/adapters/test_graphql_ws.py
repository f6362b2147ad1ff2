"""The graphql-transport-ws session, frame by frame.

Inbound frames are written as the graphql-ws project's PROTOCOL.md shows its messages
(`{"type": "connection_ack"}`, `{"id": ..., "type": "next", "payload": ExecutionResult}`,
...); outbound ones are parsed and compared with the shapes that text prescribes. Hostile
frames (issue 24) also go once through a real client against a scripted server.
"""

from __future__ import annotations

import json

import pytest

from client import Client
from client.adapter import (
    PUBLISH_ACK,
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
)
from client.adapters import AdapterSettings, build_adapter, builtin_options
from client.adapters.graphql_ws import (
    DEFAULT_PUBLISH,
    DEFAULT_SUBSCRIPTION,
    GraphQLWSAdapter,
    ack_timeout_error,
    close_error,
    declared_variables,
)
from client.errors import ConnectionClosed, ProtocolError, SocketproofError
from tests.client.support import Peer, ScriptedServer, unmasked

STAMP = Stamp("u1-0", "room-a", 7, 1700000000.25)


def session(**values):
    adapter = GraphQLWSAdapter(AdapterSettings(values=values))
    return adapter, adapter.session(SessionContext(identity="user-1", label="u1-0", token="tok.en.jwt"))


def ready(**values):
    adapter, sess = session(**values)
    sess.start()
    assert isinstance(sess.receive('{"type":"connection_ack"}')[0], Ready)
    return adapter, sess


# -- start-up -------------------------------------------------------------------------


def test_handshake_offers_only_graphql_transport_ws_on_the_graphql_path():
    _, sess = session()
    shake = sess.handshake()
    assert shake.path == "/graphql"
    assert shake.subprotocols == ("graphql-transport-ws",)
    _, other = session(graphql_path="/api/ws")
    assert other.handshake().path == "/api/ws"


def test_start_sends_connection_init_with_the_minted_token():
    _, sess = session()
    (frame,) = sess.start()
    assert json.loads(frame) == {"type": "connection_init", "payload": {"token": "tok.en.jwt"}}


def test_graphql_init_replaces_the_payload_and_fills_token():
    _, sess = session(graphql_init='{"headers": {"Authorization": "Bearer $token"}, "tenant": 3}')
    (frame,) = sess.start()
    assert json.loads(frame)["payload"] == {"headers": {"Authorization": "Bearer tok.en.jwt"}, "tenant": 3}


def test_connection_ack_is_ready_with_its_payload_and_only_once():
    _, sess = session()
    sess.start()
    (event,) = sess.receive('{"type":"connection_ack","payload":{"server":"x"}}')
    assert isinstance(event, Ready) and event.info == {"server": "x"} and event.channels == ()
    (again,) = sess.receive('{"type":"connection_ack"}')
    assert isinstance(again, Push) and again.kind == "invalid"


@pytest.mark.parametrize(
    ("code", "name"),
    [(4400, "invalid_message"), (4401, "unauthorized"), (4403, "forbidden"), (4406, "not_supported"),
     (4408, "connection_init_timeout"), (4409, "subscriber_exists"), (4429, "too_many_initialisation_requests")],
)
def test_protocol_close_codes_are_named_one_line_errors(code, name):
    error = close_error(code, "Forbidden")
    assert isinstance(error, ConnectionClosed) and error.close_code == code and error.code == name
    text = str(error)
    assert text.startswith(f"{name} (close {code}): ") and "\n" not in text
    _, sess = session()
    assert sess.closed(code, "Forbidden").name == name


def test_ordinary_close_codes_are_left_to_the_client():
    assert close_error(1000, "") is None and close_error(None) is None and close_error(1011, "x") is None
    _, sess = session()
    assert sess.closed(1000, "") is None


def test_forbidden_says_what_to_check():
    assert "--jwt-secret" in str(close_error(4403, "Forbidden"))


def test_ack_timeout_is_named_and_its_seconds_come_from_the_option():
    _, sess = session(graphql_ack_timeout=2.5)
    assert sess.start_timeout == 2.5
    assert str(ack_timeout_error(2.5)) == "connection_ack_timeout: no connection_ack within 2.5 s"


@pytest.mark.parametrize("frame", ['{"type":"ka"}', '{"type":"connection_error","payload":{"message":"no"}}',
                                   '{"id":"1","type":"data","payload":{"data":{}}}'])
def test_legacy_subscriptions_transport_ws_frames_are_not_supported(frame):
    _, sess = session()
    (event,) = sess.receive(frame)
    assert isinstance(event, Failed)
    assert str(event.error).startswith("not_supported: ") and "use graphql-transport-ws" in str(event.error)


def test_negotiated_subprotocol_other_than_graphql_transport_ws_fails_in_one_line():
    _, sess = session()
    assert sess.negotiated("graphql-transport-ws") == ()
    (legacy,) = sess.negotiated("graphql-ws")
    assert "use graphql-transport-ws" in str(legacy.error)
    assert sess.negotiated(None) == ()  # the server's 4406 close (or its next frames) will tell
    (other,) = sess.negotiated("chat.v2")
    assert str(other.error) == ("subprotocol: not supported: the server chose 'chat.v2'; "
                                "it must accept graphql-transport-ws")


def test_unknown_message_type_fails_as_the_protocol_demands_and_garbage_is_invalid():
    _, sess = ready()
    (event,) = sess.receive('{"type":"hello"}')
    assert isinstance(event, Failed) and str(event.error).startswith("unexpected_frame: ")
    assert sess.receive("not json")[0].kind == "invalid"
    assert sess.receive("[1, 2]")[0].kind == "invalid"
    assert sess.receive(b"\xff\xfe")[0].kind == "invalid"


# -- ping / pong ----------------------------------------------------------------------


def test_ping_is_keepalive_answered_by_pong_with_the_same_payload():
    _, sess = ready()
    keep, send = sess.receive('{"type":"ping"}')
    assert isinstance(keep, KeepAlive) and isinstance(send, Send)
    assert json.loads(send.frame) == {"type": "pong"}
    _, send = sess.receive('{"type":"ping","payload":{"n":1}}')
    assert json.loads(send.frame) == {"type": "pong", "payload": {"n": 1}}


def test_pong_from_the_server_is_kept_not_mistaken_for_its_heartbeat():
    _, sess = ready()
    (event,) = sess.receive('{"type":"pong"}')
    assert isinstance(event, Push) and event.kind == "pong"


# -- operations -----------------------------------------------------------------------


def test_publish_is_a_subscribe_message_with_the_mutation_and_its_variables():
    _, sess = ready()
    payload = STAMP.encode() + "xxxx"
    corr, frame = sess.publish("room-a", STAMP, payload)
    message = json.loads(frame)
    assert message == {"id": corr, "type": "subscribe", "payload": {
        "query": DEFAULT_PUBLISH, "variables": {"channel": "room-a", "stamp": payload}}}


def test_publish_round_trip_ends_at_complete_with_the_last_next_payload():
    _, sess = ready()
    corr, _ = sess.publish("room-a", STAMP, STAMP.encode())
    result = {"data": {"sendMessage": {"body": STAMP.encode()}}}
    assert sess.receive(json.dumps({"id": corr, "type": "next", "payload": result})) == ()
    (reply,) = sess.receive(json.dumps({"id": corr, "type": "complete"}))
    assert isinstance(reply, Reply) and reply.corr == corr and reply.body == result and reply.error is None
    (late,) = sess.receive(json.dumps({"id": corr, "type": "complete"}))
    assert late.kind == "stale"


def test_execution_errors_in_next_fail_the_request():
    _, sess = ready()
    corr, _ = sess.publish("room-a", STAMP, STAMP.encode())
    sess.receive(json.dumps({"id": corr, "type": "next",
                             "payload": {"data": None, "errors": [{"message": "room closed"}]}}))
    (reply,) = sess.receive(json.dumps({"id": corr, "type": "complete"}))
    assert isinstance(reply.error, ProtocolError) and str(reply.error) == "graphql_error: room closed"


def test_error_message_ends_the_operation_with_its_graphql_errors():
    _, sess = ready()
    corr, _ = sess.publish("room-a", STAMP, STAMP.encode())
    frame = {"id": corr, "type": "error", "payload": [{"message": "Cannot query field 'x'"}, {"message": "b"}]}
    (reply,) = sess.receive(json.dumps(frame))
    assert reply.corr == corr and str(reply.error) == "graphql_error: Cannot query field 'x' (+1 more)"


def test_echo_is_a_round_trip_only_when_a_query_is_given():
    adapter, sess = ready()
    assert ROUND_TRIP not in adapter.capabilities and {PUBLISH_ACK, SUBSCRIBE} <= adapter.capabilities
    with pytest.raises(UnsupportedOperation):
        sess.request("echo", "hi")
    query = "query($message: String!) { echo(message: $message) }"
    adapter, sess = ready(graphql_echo=query)
    assert ROUND_TRIP in adapter.capabilities
    corr, frame = sess.request("echo", "hi")
    assert json.loads(frame)["payload"] == {"query": query, "variables": {"message": "hi"}}
    sess.receive(json.dumps({"id": corr, "type": "next", "payload": {"data": {"echo": "hi"}}}))
    (reply,) = sess.receive(json.dumps({"id": corr, "type": "complete"}))
    assert reply.body == {"data": {"echo": "hi"}}
    with pytest.raises(UnsupportedOperation):
        sess.request("history", {})


def test_subscription_has_no_ack_and_each_next_is_a_stamped_delivery():
    _, sess = ready()
    corr, frame = sess.subscribe("room-a")
    assert corr is None
    message = json.loads(frame)
    assert message["type"] == "subscribe" and message["payload"] == {
        "query": DEFAULT_SUBSCRIPTION, "variables": {"channel": "room-a"}}
    op_id = message["id"]
    data = {"data": {"messages": {"body": STAMP.encode() + "xx"}}}
    (delivery,) = sess.receive(json.dumps({"id": op_id, "type": "next", "payload": data}))
    assert isinstance(delivery, Delivery)
    assert delivery.channel == "room-a" and delivery.stamp == STAMP and delivery.body == data["data"]


def test_many_subscriptions_have_unique_ids_and_route_by_id():
    _, sess = ready()
    ids = [json.loads(sess.subscribe(f"room-{n}")[1])["id"] for n in range(5)]
    corr, _ = sess.publish("room-0", STAMP, STAMP.encode())
    assert len(set(ids + [corr])) == 6
    stamp = Stamp("u2-0", "room-3", 1, 1.0)
    (delivery,) = sess.receive(json.dumps({"id": ids[3], "type": "next",
                                           "payload": {"data": {"messages": {"body": stamp.encode()}}}}))
    assert delivery.channel == "room-3" and delivery.stamp == stamp


def test_server_complete_ends_a_subscription_and_later_nexts_are_stale():
    _, sess = ready()
    op_id = json.loads(sess.subscribe("room-a")[1])["id"]
    (done,) = sess.receive(json.dumps({"id": op_id, "type": "complete"}))
    assert done.kind == "subscription_complete" and done.body["channel"] == "room-a"
    (late,) = sess.receive(json.dumps({"id": op_id, "type": "next", "payload": {"data": {}}}))
    assert late.kind == "stale"


def test_client_complete_stops_listening():
    _, sess = ready()
    op_id = json.loads(sess.subscribe("room-a")[1])["id"]
    (frame,) = sess.unsubscribe("room-a")
    assert json.loads(frame) == {"id": op_id, "type": "complete"}
    assert sess.subscriptions == {} and sess.unsubscribe("room-a") == []


def test_a_refused_subscription_ends_the_session_with_the_servers_reason():
    _, sess = ready()
    op_id = json.loads(sess.subscribe("room-a")[1])["id"]
    (event,) = sess.receive(json.dumps({"id": op_id, "type": "error",
                                        "payload": [{"message": "Cannot query field 'messages'"}]}))
    assert isinstance(event, Failed)
    assert str(event.error) == ("subscription_refused: the subscription to 'room-a' failed: "
                                "Cannot query field 'messages'")


def test_execution_errors_on_a_subscription_are_kept_not_delivered():
    _, sess = ready()
    op_id = json.loads(sess.subscribe("room-a")[1])["id"]
    (event,) = sess.receive(json.dumps({"id": op_id, "type": "next",
                                        "payload": {"data": None, "errors": [{"message": "boom"}]}}))
    assert event.kind == "subscription_error"


# -- options ---------------------------------------------------------------------------


def test_variables_the_document_does_not_declare_are_left_out():
    assert declared_variables(DEFAULT_PUBLISH) == {"channel", "stamp"}
    _, sess = ready(graphql_publish="mutation($stamp: String!) { post(text: $stamp) { id } }")
    _, frame = sess.publish("room-a", STAMP, STAMP.encode())
    assert json.loads(frame)["payload"]["variables"] == {"stamp": STAMP.encode()}


def test_options_are_registered_with_their_defaults():
    options = {option.flag: option for option in builtin_options()}
    assert options["--graphql-path"].default == "/graphql"
    assert options["--graphql-subscription"].default == DEFAULT_SUBSCRIPTION
    assert options["--graphql-ack-timeout"].type is float
    for flag in ("--graphql-publish", "--graphql-echo", "--graphql-init"):
        assert flag in options


@pytest.mark.parametrize(
    ("values", "says"),
    [({"graphql_init": "{nope"}, "--graphql-init is not JSON"),
     ({"graphql_init": "[1]"}, "--graphql-init must be a JSON object"),
     ({"graphql_publish": "mutation { ping }"}, "--graphql-publish must declare $stamp"),
     ({"graphql_ack_timeout": 0}, "--graphql-ack-timeout 0 must be > 0"),
     ({"graphql_path": "graphql"}, "must start with '/'")],
)
def test_unusable_options_are_one_line(values, says):
    from client.adapters import AdapterError

    with pytest.raises(AdapterError) as caught:
        build_adapter("graphql-ws", AdapterSettings(values=values))
    assert says in str(caught.value) and "\n" not in str(caught.value)


# -- hostile input (issue 24, finding 8) ------------------------------------------------------

DEEP = "[" * 20_000 + "]" * 20_000
"""Valid JSON nested past the decoder's recursion limit."""


@pytest.mark.parametrize("frame", [
    '{"id":[1],"type":"next","payload":{"data":{}}}',
    '{"id":{},"type":"complete"}',
    '{"id":[1],"type":"error","payload":[{"message":"x"}]}',
    '{"id":1,"type":"next","payload":{}}',
    '{"type":"complete"}',
])
def test_an_operation_message_without_a_string_id_ends_the_session_as_invalid_message(frame):
    _, sess = ready()
    sess.subscribe("room-a")
    (event,) = sess.receive(frame)
    assert isinstance(event, Failed) and event.error.code == "invalid_message"
    assert "operation ids are strings" in str(event.error) and "\n" not in str(event.error)


@pytest.mark.parametrize("frame", [DEEP, '{"type":"next","id":"1","payload":' + DEEP + "}"])
def test_json_nested_too_deeply_is_an_invalid_frame_not_a_recursion_error(frame):
    _, sess = ready()
    (event,) = sess.receive(frame)
    assert isinstance(event, Push) and event.kind == "invalid"


def hostile_server(*frames: str):
    """A scripted server that answers connection_init with `frames`, then reads until the client leaves."""

    def script(peer: Peer):
        init = peer.read_json()
        for frame in frames:
            peer.conn.sendall(unmasked(0x1, frame.encode()))
        while (got := peer.read()) is not None and got[0].name != "CLOSE":
            pass
        return init

    return script


@pytest.mark.usefixtures("nothing_left_open")
def test_a_real_connection_survives_deep_json_and_names_a_hostile_id(caplog):
    """Over a real socket: before the fix the first frame killed the connection (1011 and a
    traceback in the receive thread), the second raised TypeError there."""
    adapter = GraphQLWSAdapter(AdapterSettings())
    context = SessionContext(identity="user-1", label="u1-0", token="tok.en.jwt")
    with ScriptedServer(hostile_server(DEEP, '{"type":"connection_ack"}')) as scripted:
        client = Client(scripted.url, adapter, context, timeout=5)
        assert isinstance(client.connect(), Ready)
        assert client.next_push(1.0) == DEEP
        client.close()
    assert scripted.result["type"] == "connection_init"
    with ScriptedServer(hostile_server('{"id":[1],"type":"next","payload":{}}')) as scripted:
        client = Client(scripted.url, adapter, context, timeout=5)
        with pytest.raises(SocketproofError) as caught:
            client.connect()
    assert caught.value.code == "invalid_message", caught.value
    assert "Traceback" not in caplog.text
