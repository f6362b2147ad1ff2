"""The graphql-ws adapter's session against a real strawberry-graphql server on uvicorn.

websocket-client moves the frames (a stand-in for the transport, with no protocol
knowledge of its own); the adapter session encodes and classifies every one of them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from apps.graphql_app import AppHandle, running_app
from client.adapter import Delivery, Event, Failed, Push, Ready, Reply, Send, SessionContext, Stamp
from client.adapters import AdapterSettings
from client.adapters.graphql_ws import GraphQLWSAdapter
from client.tokens import mint_token

SECRET = "graphql-smoke-secret-of-at-least-32-bytes"
ECHO = "query($message: String!) { echo(message: $message) }"


class Wire:
    """One adapter session over one real WebSocket: connect, start, send, and collect events."""

    def __init__(self, app: AppHandle, label: str, *, secret: str = SECRET, header_only: bool = False,
                 **values: Any) -> None:
        self.session = GraphQLWSAdapter(AdapterSettings(values=values)).session(
            SessionContext(identity=label, label=label, token=mint_token(secret, label)))
        shake = self.session.handshake()
        url = app.ws_url.rsplit("/graphql", 1)[0] + shake.path
        if header_only:  # offer the subprotocol without websocket-client insisting on it (as wsproto does)
            self.ws = websocket.create_connection(
                url, header=[f"Sec-WebSocket-Protocol: {', '.join(shake.subprotocols)}"], timeout=5)
        else:
            self.ws = websocket.create_connection(url, subprotocols=list(shake.subprotocols), timeout=5)
        self.closed: tuple[int, str] | None = None
        self.events: list[Event] = list(self.session.negotiated(self.ws.getsubprotocol()))
        for frame in self.session.start():
            self.ws.send(frame)

    def wait(self, until: Callable[[list[Event]], bool], timeout: float = 5.0) -> list[Event]:
        """Receive until `until(events)` holds, the socket closes, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not until(self.events) and self.closed is None and time.monotonic() < deadline:
            self.ws.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                payload = data.data if hasattr(data, "data") else data
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = (code, payload[2:].decode(errors="replace"))
                error = self.session.closed(*self.closed)
                if error is not None:
                    self.events.append(Failed(error))
            elif opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                for event in self.session.receive(data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data):
                    self.events.append(event)
                    if isinstance(event, Send):
                        self.ws.send(event.frame)
        return self.events

    def ready(self) -> Ready:
        self.wait(lambda events: any(isinstance(e, (Ready, Failed)) for e in events))
        found = [e for e in self.events if isinstance(e, (Ready, Failed))]
        assert found and isinstance(found[0], Ready), f"no connection_ack: {self.events} closed={self.closed}"
        return found[0]

    def failure(self) -> Failed:
        self.wait(lambda events: any(isinstance(e, Failed) for e in events))
        found = [e for e in self.events if isinstance(e, Failed)]
        assert found, f"expected a failure, got {self.events} closed={self.closed}"
        return found[0]

    def call(self, corr: Any, frame: str) -> Reply:
        self.ws.send(frame)
        self.wait(lambda events: any(isinstance(e, Reply) and e.corr == corr for e in events))
        replies = [e for e in self.events if isinstance(e, Reply) and e.corr == corr]
        assert replies, f"no reply to {corr}: {self.events}"
        return replies[0]

    def deliveries(self) -> list[Delivery]:
        return [e for e in self.events if isinstance(e, Delivery)]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def app() -> Iterator[AppHandle]:
    with running_app(SECRET) as handle:
        yield handle


@pytest.fixture
def wires() -> Iterator[list[Wire]]:
    opened: list[Wire] = []
    yield opened
    for wire in opened:
        wire.close()


def publish_stamps(sender: Wire, channel: str, count: int) -> list[Stamp]:
    stamps = []
    for counter in range(1, count + 1):
        stamp = Stamp(sender.session.context.label, channel, counter, round(time.time(), 6))
        reply = sender.call(*sender.session.publish(channel, stamp, stamp.encode() + "x" * 16))
        assert reply.error is None and stamp.encode() in str(reply.body)
        stamps.append(stamp)
    return stamps


def subscribed(app: AppHandle, receiver: Wire, *channels: str) -> None:
    for channel in channels:
        corr, frame = receiver.session.subscribe(channel)
        assert corr is None  # graphql-transport-ws acknowledges no subscription
        receiver.ws.send(frame)
    app.wait_metrics(graphql_subscriptions=len(channels))  # the server has registered them


def test_publish_round_trips_and_every_subscriber_gets_each_stamp_once_in_order(app, wires):
    receiver, sender = Wire(app, "r-0"), Wire(app, "s-0")
    wires += [receiver, sender]
    receiver.ready(), sender.ready()
    subscribed(app, receiver, "room-a")
    assert app.metrics()["graphql_connections"] == 2
    stamps = publish_stamps(sender, "room-a", 6)
    receiver.wait(lambda events: len([e for e in events if isinstance(e, Delivery)]) >= 6, timeout=5)
    got = receiver.deliveries()
    assert [d.stamp for d in got] == stamps and {d.channel for d in got} == {"room-a"}
    receiver.close(), sender.close()
    app.wait_metrics(graphql_connections=0, graphql_subscriptions=0)


def test_echo_query_is_a_round_trip(app, wires):
    wire = Wire(app, "e-0", graphql_echo=ECHO)
    wires.append(wire)
    wire.ready()
    reply = wire.call(*wire.session.request("echo", "hello"))
    assert reply.error is None and reply.body == {"data": {"echo": "hello"}}


def test_many_subscriptions_route_by_operation_id_and_complete_is_honoured(app, wires):
    receiver, sender = Wire(app, "r-1"), Wire(app, "s-1")
    wires += [receiver, sender]
    receiver.ready(), sender.ready()
    subscribed(app, receiver, "room-1", "room-2", "room-3")
    for channel in ("room-1", "room-2", "room-3"):
        publish_stamps(sender, channel, 2)
    receiver.wait(lambda events: len([e for e in events if isinstance(e, Delivery)]) >= 6)
    assert sorted((d.channel, d.stamp.counter) for d in receiver.deliveries()) == [
        (room, n) for room in ("room-1", "room-2", "room-3") for n in (1, 2)]
    assert all(d.stamp.channel == d.channel for d in receiver.deliveries())
    for frame in receiver.session.unsubscribe("room-2"):
        receiver.ws.send(frame)
    app.wait_metrics(graphql_subscriptions=2)


def test_ping_from_the_client_gets_a_pong(app, wires):
    wire = Wire(app, "p-0")
    wires.append(wire)
    wire.ready()
    wire.ws.send('{"type":"ping"}')
    wire.wait(lambda events: any(isinstance(e, Push) and e.kind == "pong" for e in events))
    assert any(isinstance(e, Push) and e.kind == "pong" for e in wire.events)


def test_bad_token_in_connection_init_is_a_named_forbidden(app, wires):
    wire = Wire(app, "bad-0", secret="not-the-servers-secret-at-least-32-bytes")
    wires.append(wire)
    failed = wire.failure()
    assert wire.closed is not None and wire.closed[0] == 4403
    assert str(failed.error).startswith("forbidden (close 4403): ")


def test_a_legacy_only_server_gets_one_line_not_supported(wires):
    with running_app(SECRET, "--protocols", "graphql-ws") as legacy:
        wire = Wire(legacy, "l-0", header_only=True)
        wires.append(wire)
        text = str(wire.failure().error)
        assert wire.closed is not None and wire.closed[0] == 4406
        assert text.startswith("not_supported (close 4406): ")
        assert "graphql-transport-ws" in text and "\n" not in text
        wire.close()


@pytest.mark.parametrize(
    ("switch", "counters"),
    [(None, [1, 2, 3, 4, 5, 6]),
     ("--drop-every", [1, 2, 4, 5]),
     ("--duplicate-every", [1, 2, 3, 3, 4, 5, 6, 6]),
     ("--reorder-every", [1, 2, 4, 3, 5])],
)
def test_fault_switches_change_what_a_subscription_receives(switch, counters, wires):
    with running_app(SECRET, *((switch, "3") if switch else ())) as faulty:
        receiver, sender = Wire(faulty, "r-2"), Wire(faulty, "s-2")
        wires += [receiver, sender]
        receiver.ready(), sender.ready()
        subscribed(faulty, receiver, "room-f")
        publish_stamps(sender, "room-f", 6)
        receiver.wait(lambda events: len([e for e in events if isinstance(e, Delivery)]) >= len(counters))
        receiver.wait(lambda events: False, timeout=0.3)  # and nothing more
        assert [d.stamp.counter for d in receiver.deliveries()] == counters
        receiver.close(), sender.close()
        faulty.wait_metrics(graphql_connections=0, graphql_subscriptions=0)
