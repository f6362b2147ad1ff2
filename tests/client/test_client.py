"""client/client.py: the protocol-free Client over an adapter, on real sockets.

A small in-test adapter ("toy") against a scripted server (tests/client/support.py) drives
each start-up and close path exactly; docs/examples/json_chat_adapter.py against the
`websockets`-library chat server shows the same client on a server nobody here wrote.
Plain threads; every real-socket test checks nothing was left open.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from wsproto.frame_protocol import Opcode

from client.adapter import (
    PUBLISH_ACK,
    ROUND_TRIP,
    SUBSCRIBE,
    Delivery,
    Failed,
    Frame,
    Handshake,
    KeepAlive,
    Push,
    Ready,
    Reply,
    Send,
    SessionContext,
    Stamp,
    StateChange,
    stamped_payload,
)
from client.adapters import AdapterSettings, load_adapter_class
from client.client import Client
from client.errors import ConnectionClosed, ProtocolError, SocketproofError, Timeout
from client.transport import State
from tests.client.support import ROOT, FakeRecorder, FakeRequestEvent, Peer, ScriptedServer

real_sockets = pytest.mark.usefixtures("nothing_left_open")


def wait_for(condition: Callable[[], Any], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- a toy adapter over a scripted server ---------------------------------------------------------


class ToySession:
    """A tiny JSON protocol: `{"k": kind, ...}` frames; the server greets with `welcome`."""

    def __init__(self, context: SessionContext, **extra: Any) -> None:
        self.context = context
        self.ids = itertools.count(1)
        for name, value in extra.items():  # optional session parts a test switches on
            setattr(self, name, value)

    def handshake(self) -> Handshake:
        return Handshake("/toy?v=1", {"who": self.context.identity}, {"X-Toy": "yes"}, ("toy.v1", "toy.v2"))

    def start(self) -> list[Frame]:
        return ['{"k":"hello"}']

    def receive(self, frame: Frame) -> list[Any]:
        msg = json.loads(frame)
        kind = msg["k"]
        if kind == "welcome":
            return [Ready(info=msg, conn_id=msg.get("conn"), channels=("c1",))]
        if kind == "refuse":
            return [Failed(ProtocolError("refused", msg.get("why", "")))]
        if kind == "reply":
            error = ProtocolError(msg["err"], "refused") if "err" in msg else None
            return [Reply(msg["id"], msg, error, msg.get("seq"))]
        if kind == "msg":
            return [Delivery(msg.get("ch"), Stamp.find(msg.get("body")), msg)]
        if kind == "state":
            return [StateChange("snapshot", msg["v"], state={})]
        if kind == "ping":
            return [KeepAlive(), Send('{"k":"pong"}')]
        return [Push(msg, "other")]

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        i = next(self.ids)
        return i, json.dumps({"k": name, "id": i, "body": body})

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        i = next(self.ids)
        return i, json.dumps({"k": "pub", "id": i, "ch": channel, "body": payload})

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        return None, json.dumps({"k": "sub", "ch": channel})

    def goodbye(self) -> list[Frame]:
        return ['{"k":"bye"}']


class ToyAdapter:
    name = "toy"
    default_path = "/toy"
    capabilities = frozenset({ROUND_TRIP, PUBLISH_ACK, SUBSCRIBE})

    def __init__(self, **session_extra: Any) -> None:
        self.session_extra = session_extra

    def session(self, context: SessionContext) -> ToySession:
        return ToySession(context, **self.session_extra)


def named_closes(code: int | None, reason: str) -> SocketproofError | None:
    """A session's `closed()`: 4403 means forbidden (as graphql-ws's does)."""
    return ProtocolError("forbidden", reason) if code == 4403 else None


def toy_client(url: str, adapter: ToyAdapter | None = None, **kwargs: Any) -> Client:
    return Client(url, adapter or ToyAdapter(), SessionContext("alice", "alice-1"), timeout=2.0, **kwargs)


def greeted(peer: Peer) -> None:
    assert peer.read_json() == {"k": "hello"}
    peer.send_json({"k": "welcome", "conn": "toy-1"})


def finish(peer: Peer) -> Any:
    """Answer the client's close frame (and return it)."""
    while True:
        frame = peer.read()
        if frame is None or frame[0] is Opcode.CLOSE:
            break
    peer.send_close(1000)
    return frame


STAMP = Stamp("alice-1", "c1", 1, 1700000000.5)


@real_sockets
def test_start_up_handshake_first_frames_events_before_ready_and_goodbye() -> None:
    def script(peer: Peer) -> Any:
        hello = peer.read_json()
        peer.send_json({"k": "msg", "ch": "c1", "body": STAMP.encode()})  # before Ready: kept for after it
        peer.send_json({"k": "state", "v": 3})
        peer.send_json({"k": "welcome", "conn": "toy-1"})
        return hello, peer.read_json(), finish(peer)

    hooks, event = FakeRecorder(), FakeRequestEvent()
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, hooks=hooks, request_event=event)
        assert client.state is State.CLOSED
        ready = client.connect()
        assert (ready.conn_id, ready.channels, client.conn_id, client.state) == ("toy-1", ("c1",), "toy-1", State.OPEN)
        assert client.handshake_response is not None and client.handshake_response.subprotocol == "toy.v1"
        assert client.next_push(1.0) == {"k": "msg", "ch": "c1", "body": STAMP.encode()}
        assert client.close().code == 1000
    hello, bye, close = scripted.result
    assert (hello, bye, close[0]) == ({"k": "hello"}, {"k": "bye"}, Opcode.CLOSE)
    head = scripted.request_head
    assert head.startswith("GET /toy?v=1&who=alice HTTP/1.1\r\n")
    assert "X-Toy: yes\r\n" in head and "Sec-WebSocket-Protocol: toy.v1, toy.v2\r\n" in head
    assert hooks.names()[:4] == ["opened", "subscribed", "delivered", "state"]
    opened = dict(hooks.named("opened")[0][1:])
    assert (opened["conn_id"], opened["channels"]) == ("toy-1", ("c1",))
    assert opened["capabilities"] == ToyAdapter.capabilities
    assert hooks.named("delivered")[0][:4] == ("c1", STAMP, None, None)
    assert hooks.named("state")[0][:2] == ("snapshot", 3)
    assert hooks.named("closed")[0][:3] == (1000, "", "client")
    (connect,) = event.fired
    assert (connect["name"], connect["exception"], connect["request_type"]) == ("connect", None, "WS")
    assert connect["response_time"] > 0


@real_sockets
def test_a_failed_start_up_is_raised_to_connect() -> None:
    def script(peer: Peer) -> Any:
        peer.read_json()
        peer.send_json({"k": "refuse", "why": "no room"})
        return peer.read()  # the client drops the connection: TCP ends

    hooks, event = FakeRecorder(), FakeRequestEvent()
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, hooks=hooks, request_event=event)
        with pytest.raises(ProtocolError) as caught:
            client.connect()
        assert client.state is State.CLOSED
    assert str(caught.value) == "refused: no room"
    assert scripted.result is None
    assert event.fired[0]["name"] == "connect" and event.fired[0]["exception"] is caught.value
    assert hooks.calls == []  # never opened, so nothing to close either


@real_sockets
@pytest.mark.parametrize(("code", "error"), [(4403, ProtocolError), (4000, ConnectionClosed)])
def test_a_close_during_start_up_is_named_by_the_sessions_closed(code: int, error: type) -> None:
    def script(peer: Peer) -> Any:
        peer.read_json()
        peer.send_close(code, "go away")
        return peer.read()

    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, ToyAdapter(closed=named_closes))
        with pytest.raises(error) as caught:
            client.connect()
    assert ("forbidden: go away" if code == 4403 else f"connection closed with {code}: go away") == str(caught.value)
    assert scripted.result[0] is Opcode.CLOSE and int(scripted.result[1][0]) == code  # echoed


@real_sockets
@pytest.mark.parametrize(("code", "error", "text"), [(4000, ConnectionClosed, "connection closed with 4000: bye"),
                                                     (4403, ProtocolError, "forbidden: bye")])
def test_a_close_fails_every_waiter_with_the_named_error(code: int, error: type, text: str) -> None:
    def script(peer: Peer) -> Any:
        greeted(peer)
        got = [peer.read_json() for _ in range(4)]  # three requests and a publish, all waiting
        peer.send_close(code, "bye")
        return got, peer.read()

    hooks, event = FakeRecorder(), FakeRequestEvent()
    errors: list[BaseException] = []
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, ToyAdapter(closed=named_closes), hooks=hooks, request_event=event)
        client.connect()

        def call(fn: Callable[[], Any]) -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(lambda i=i: client.request("work", i),)) for i in range(3)]
        threads.append(threading.Thread(target=call, args=(lambda: client.publish("c1", STAMP, STAMP.encode()),)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(3)
        assert not any(t.is_alive() for t in threads)
    assert len(errors) == 4 and all(type(e) is error and str(e) == text for e in errors), errors
    got, echo = scripted.result
    assert sorted(m["k"] for m in got) == ["pub", "work", "work", "work"]
    assert echo[0] is Opcode.CLOSE and int(echo[1][0]) == code
    assert [args[:2] for args in hooks.named("publish_failed")] == [(STAMP, "closed")]  # once
    assert hooks.named("closed")[0][:3] == (code, "bye", "server")
    failed = [e for e in event.fired if e["name"] in ("work", "publish")]
    assert len(failed) == 4 and all(type(e["exception"]) is error for e in failed)
    with pytest.raises(ConnectionClosed):
        client.request("work", 9)


@real_sockets
def test_a_drop_fails_a_pending_request_with_connection_closed() -> None:
    asked = threading.Event()

    def script(peer: Peer) -> Any:
        greeted(peer)
        request = peer.read_json()
        asked.set()
        return request, peer.read()

    errors: list[BaseException] = []
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url)
        client.connect()
        waiter = threading.Thread(target=lambda: errors.append(pytest.raises(ConnectionClosed, client.request,
                                                                             "slow", 1).value))
        waiter.start()
        assert asked.wait(2)
        client.drop()
        waiter.join(2)
    assert [e.code for e in errors] == [None]  # type: ignore[attr-defined]
    assert scripted.result[1] is None  # TCP ended with no close frame


@real_sockets
def test_keepalives_sends_pushes_acks_and_refusals() -> None:
    def script(peer: Peer) -> Any:
        greeted(peer)
        peer.send_json({"k": "ping"})
        pong = peer.read_json()  # the session's Send, sent by the client
        peer.send_json({"k": "note"})
        first = peer.read_json()
        peer.send_json({"k": "reply", "id": first["id"], "seq": 7})
        second = peer.read_json()
        peer.send_json({"k": "reply", "id": second["id"], "err": "queue_full"})
        third = peer.read_json()
        peer.send_json({"k": "reply", "id": third["id"], "err": "expected_one"})
        sub = peer.read_json()
        finish(peer)
        return pong, sub

    hooks, event = FakeRecorder(), FakeRequestEvent()
    other = Stamp("alice-1", "c1", 2, 1700000000.75)
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, hooks=hooks, request_event=event)
        client.connect()
        assert client.next_push(1.0) == {"k": "note"}
        assert client.publish("c1", STAMP, STAMP.encode())["seq"] == 7
        with pytest.raises(ProtocolError, match="queue_full"):
            client.publish("c1", other, other.encode())
        assert client.request("ask", None, expected_errors=("expected_one",))["err"] == "expected_one"
        assert client.subscribe("c2") is None  # nothing acknowledges it: done once sent
        client.close()
    assert scripted.result == ({"k": "pong"}, {"k": "sub", "ch": "c2"})
    assert hooks.named("keepalive") and ("in", "other") in hooks.named("frame")
    assert [args[:2] for args in hooks.named("acked")] == [(STAMP, 7)]
    assert [args[:2] for args in hooks.named("publish_failed")] == [(other, "queue_full")]
    assert [args[0] for args in hooks.named("published")] == [STAMP, other]
    assert [args[0] for args in hooks.named("error")] == ["queue_full", "expected_one"]
    assert "c2" in [args[0] for args in hooks.named("subscribed")]
    by_name = {e["name"]: e for e in event.fired}
    assert by_name["ask"]["exception"] is None  # an expected error is an answer
    assert isinstance(event.named("publish")[1]["exception"], ProtocolError)
    assert by_name["subscribe"]["exception"] is None


@real_sockets
def test_a_session_may_refuse_the_negotiated_subprotocol_before_start() -> None:
    def negotiated(subprotocol: str | None) -> list[Any]:
        return [] if subprotocol == "toy.v1" else [Failed(ProtocolError("bad_subprotocol", str(subprotocol)))]

    with ScriptedServer(lambda peer: peer.read(), subprotocol="toy.v2") as scripted:
        client = toy_client(scripted.url, ToyAdapter(negotiated=negotiated))
        with pytest.raises(ProtocolError, match="bad_subprotocol: toy.v2"):
            client.connect()
    assert scripted.result is None  # no hello: start() was never sent


@real_sockets
def test_a_sessions_start_timeout_and_its_own_error() -> None:
    def script(peer: Peer) -> Any:
        peer.read_json()
        return peer.read()  # never greets; the client gives up

    adapter = ToyAdapter(start_timeout=0.2, start_timed_out=lambda: ProtocolError("ack_timeout", "no ack"))
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, adapter)
        t0 = time.monotonic()
        with pytest.raises(ProtocolError, match="ack_timeout"):
            client.connect()
        assert time.monotonic() - t0 < 1.5  # the session's 0.2 s, not the client's 2 s
    with ScriptedServer(script) as scripted:
        client = toy_client(scripted.url, ToyAdapter(start_timeout=0.2))
        with pytest.raises(Timeout, match="no start-up from the server within 0.2s \\(toy protocol\\)"):
            client.connect()


# -- the JSON chat example against the websockets-library server -----------------------------------


def chat_adapter() -> Any:
    return load_adapter_class(f"{ROOT}/docs/examples/json_chat_adapter.py:JsonChatAdapter")(AdapterSettings())


def chat_connections(chat_url: str) -> int:
    with urllib.request.urlopen(chat_url.replace("ws://", "http://") + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("chat_connections ")))


@real_sockets
def test_json_chat_ready_round_trip_subscribe_and_publish(chat_url: str) -> None:
    adapter = chat_adapter()
    hooks, event = FakeRecorder(), FakeRequestEvent()
    sender = Client(chat_url, adapter, SessionContext("alice", "alice-1"), hooks=hooks, request_event=event,
                    timeout=2.0)
    receiver = Client(chat_url, adapter, SessionContext("bob", "bob-1"), timeout=2.0)
    assert sender.url == chat_url + "/chat"  # the adapter's default path on a bare host
    deliveries: list[Delivery] = []
    stamp = Stamp("alice-1", "room-1", 1, 1700000000.5)
    payload = stamped_payload(stamp, 64)
    with sender, receiver:
        ready = sender.connect()  # the server says nothing first: ready_without_greeting
        assert (ready.conn_id, sender.state) == ("alice-1", State.OPEN)
        receiver.connect()
        receiver.on_delivery = deliveries.append
        assert receiver.subscribe("room-1") == {"op": "joined", "room": "room-1"}
        assert sender.request("echo", {"n": 1}) == {"op": "echo", "ref": 1, "body": {"n": 1}}
        with pytest.raises(ProtocolError, match="refused: unknown op 'nope'"):
            sender.request("nope", None)
        assert sender.publish("room-1", stamp, payload) is None  # no ack: done once sent
        wait_for(lambda: deliveries)
        wait_for(lambda: chat_connections(chat_url) == 2)
    wait_for(lambda: chat_connections(chat_url) == 0)
    assert sender.state is State.CLOSED and receiver.state is State.CLOSED
    (delivery,) = deliveries
    assert (delivery.channel, delivery.stamp, delivery.body["body"]) == ("room-1", stamp, payload)
    connect, echo, nope, publish = event.fired
    assert connect["name"] == "connect" and connect["exception"] is None
    assert (echo["name"], echo["request_type"], echo["exception"], echo["context"]) == (
        "echo", "WS", None, {"label": "alice-1"})
    assert echo["response_time"] > 0
    assert echo["response_length"] == len(json.dumps({"op": "echo", "ref": 1, "body": {"n": 1}}))
    assert isinstance(nope["exception"], ProtocolError)
    assert (publish["name"], publish["exception"], publish["response_length"]) == (
        "publish", None, len(json.dumps({"op": "publish", "room": "room-1", "body": payload})))
    assert publish["response_time"] >= 0
    opened = dict(hooks.named("opened")[0][1:])
    assert (opened["conn_id"], opened["channels"], opened["capabilities"]) == ("alice-1", (), adapter.capabilities)
    assert [args[0] for args in hooks.named("published")] == [stamp]
    assert not hooks.named("acked")  # nothing acknowledges a publish on this protocol
    assert hooks.named("closed")[0][:3] == (1000, "", "client")


class WithoutGreeting:
    """The JSON chat adapter with its `ready_without_greeting` hidden: nothing makes it ready."""

    name = "no-greeting"
    default_path = "/chat"
    capabilities = frozenset({ROUND_TRIP})

    def session(self, context: SessionContext) -> Any:
        inner = chat_adapter().session(context)

        class Hidden:
            def __getattr__(self, name: str) -> Any:
                if name == "ready_without_greeting":
                    raise AttributeError(name)
                return getattr(inner, name)

        return Hidden()


@real_sockets
def test_without_ready_without_greeting_a_silent_server_never_gets_ready(chat_url: str) -> None:
    event = FakeRequestEvent()
    client = Client(chat_url, WithoutGreeting(), SessionContext("carol", "carol-1"), timeout=0.3,
                    request_event=event)
    with pytest.raises(Timeout, match="no-greeting protocol"):
        client.connect()
    assert client.state is State.CLOSED
    assert isinstance(event.fired[0]["exception"], Timeout)
    with pytest.raises(ConnectionClosed):
        client.request("echo", 1)
    wait_for(lambda: chat_connections(chat_url) == 0)
