"""The STOMP and MQTT codecs against a real RabbitMQ (web-stomp, web-mqtt), their frames moved
by websocket-client: no Locust, no Socketproof client, nothing mocked.

The broker is Debian's rabbitmq-server 3.10.8, private to the test session (tests/support/rabbitmq.py,
the `broker` fixture of tests/conftest.py); without it these tests skip with the install command.
Some tests pin what RabbitMQ does where the specifications leave room or it departs from them;
each says so.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import websocket

from client.adapters import mqtt_packets as mqtt
from client.adapters.stomp_frames import (
    HEARTBEAT,
    Heartbeat,
    StompFrame,
    decode,
    negotiate_heart_beat,
    parse_heart_beat,
)
from tests.support import rabbitmq as support
from tests.support.rabbitmq import RabbitMQ, running_rabbitmq

DEADLINE = 10.0


class Closed(Exception):
    """The server closed the WebSocket: `code` and `reason` of its close frame."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


def _read(ws: websocket.WebSocket, timeout: float) -> Any:
    """One data message (str or bytes); raises Closed on a close frame or a dropped socket."""
    ws.settimeout(timeout)
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketConnectionClosedException:
            raise Closed(None, "dropped") from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            raise Closed(code, data[2:].decode(errors="replace"))
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return data.decode("utf-8")
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return data


class Stomp:
    """One web-stomp connection: frames out through the codec, frames in through `decode`."""

    def __init__(self, broker: RabbitMQ, subprotocol: str = "v12.stomp") -> None:
        self.ws = websocket.create_connection(broker.stomp_url, subprotocols=[subprotocol], timeout=DEADLINE)
        self.seen: list[Any] = []

    def send(self, command: str, headers: dict[str, str], body: str = "") -> None:
        self.ws.send(StompFrame.make(command, headers, body).encode_text())

    def connect(self, broker: RabbitMQ, passcode: str | None = None, heart_beat: str = "0,0") -> StompFrame:
        self.send("CONNECT", {"accept-version": "1.2", "host": broker.vhost, "login": broker.user,
                              "passcode": broker.password if passcode is None else passcode,
                              "heart-beat": heart_beat})
        [frame] = self.until(lambda item: isinstance(item, StompFrame))
        return frame

    def until(self, wanted: Any, count: int = 1, deadline: float = DEADLINE) -> list[Any]:
        """Read messages until `count` frames (or heart-beats) match `wanted`; those."""
        end = time.monotonic() + deadline
        found: list[Any] = []
        while len(found) < count:
            left = end - time.monotonic()
            assert left > 0, f"only {len(found)} of {count} wanted within {deadline}s; saw {self.seen[-5:]}"
            for item in decode(_read(self.ws, left)):
                self.seen.append(item)
                if wanted(item):
                    found.append(item)
        return found

    def close(self) -> None:
        self.ws.close()


class Mqtt:
    """One web-mqtt connection (binary messages, subprotocol `mqtt`), packets through the codec."""

    def __init__(self, broker: RabbitMQ, subprotocol: str = "mqtt") -> None:
        self.ws = websocket.create_connection(broker.mqtt_url, subprotocols=[subprotocol], timeout=DEADLINE)
        self.reader = mqtt.PacketReader(mqtt.MQTT_311)
        self.seen: list[Any] = []

    def send(self, packet: Any, version: int = mqtt.MQTT_311) -> None:
        self.ws.send_binary(packet.encode(version))

    def connect(self, broker: RabbitMQ, client_id: str, clean: bool = True, password: str | None = None) -> Any:
        self.send(mqtt.Connect(client_id, mqtt.MQTT_311, clean, 30, broker.user,
                               (broker.password if password is None else password).encode()))
        [packet] = self.until(mqtt.Connack)
        return packet

    def until(self, wanted: type | tuple[type, ...], count: int = 1, deadline: float = DEADLINE) -> list[Any]:
        end = time.monotonic() + deadline
        found: list[Any] = []
        while len(found) < count:
            left = end - time.monotonic()
            assert left > 0, f"only {len(found)} of {count} {wanted} within {deadline}s; saw {self.seen[-5:]}"
            data = _read(self.ws, left)
            assert isinstance(data, bytes), f"web-mqtt sent a text message: {data!r}"
            for packet in self.reader.feed(data):
                self.seen.append(packet)
                if isinstance(packet, wanted):
                    found.append(packet)
        return found

    def close(self) -> None:
        self.ws.close()


# -- the broker itself -------------------------------------------------------------------------


def test_without_rabbitmq_server_the_fixture_skips_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "find_sbin", lambda: None)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install -y --no-install-recommends rabbitmq-server"):
        with running_rabbitmq():
            pass


def test_the_private_broker_listens_on_loopback_only_and_on_no_fixed_port(broker: RabbitMQ) -> None:
    listening = broker.listening()
    assert listening, "found none of the broker's listening sockets"
    assert {address for address, _ in listening} <= {"127.0.0.1", "::1"}, listening
    ports = {port for _, port in listening}
    assert not ports & {4369, 5672, 15672, 15674, 15675, 25672, 61613, 1883}, ports
    assert {broker.ports.amqp, broker.ports.dist, broker.ports.epmd, broker.ports.stomp,
            broker.ports.mqtt, broker.ports.prometheus} == ports
    assert 0 < broker.started_in < 120


def test_a_path_no_plugin_serves_is_http_404(broker: RabbitMQ) -> None:
    for url in (broker.stomp_url.replace("/ws", "/stomp"), broker.mqtt_url.replace("/ws", "/mqtt"),
                broker.stomp_url.replace("/ws", "/")):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, subprotocols=["v12.stomp", "mqtt"], timeout=DEADLINE)
        assert refused.value.status_code == 404, url


# -- STOMP over web-stomp -------------------------------------------------------------------------


def test_stomp_connect_subscribe_and_send_with_receipts(broker: RabbitMQ) -> None:
    client = Stomp(broker)
    try:
        assert client.ws.getsubprotocol() == "v12.stomp"
        connected = client.connect(broker)
        assert connected.command == "CONNECTED" and connected["version"] == "1.2"
        assert connected["server"].startswith("RabbitMQ/")
        assert broker.connections() == 1 == broker.tracked_connections() == broker.metric_connections()

        client.send("SUBSCRIBE", {"id": "sub-0", "destination": "/topic/room-0", "receipt": "sub-receipt"})
        [receipt] = client.until(lambda item: isinstance(item, StompFrame) and item.command == "RECEIPT")
        assert receipt["receipt-id"] == "sub-receipt"

        client.send("SEND", {"destination": "/topic/room-0", "receipt": "send-1", "content-type": "text/plain"},
                    "sp1|u#1|room-0|1|1.000000|")
        frames = client.until(lambda item: isinstance(item, StompFrame) and item.command in ("MESSAGE", "RECEIPT"),
                              count=2)
        message = next(frame for frame in frames if frame.command == "MESSAGE")
        assert message.text == "sp1|u#1|room-0|1|1.000000|"
        assert message["subscription"] == "sub-0" and message["destination"] == "/topic/room-0"
        assert message["message-id"]  # RabbitMQ's: T_<subscription>@@<session>@@<delivery tag>
        assert message["content-length"] == str(len(message.body))
        # RabbitMQ copies the SEND's own headers, receipt included, into the MESSAGE
        assert message.get("receipt") == "send-1"
        assert [frame["receipt-id"] for frame in frames if frame.command == "RECEIPT"] == ["send-1"]
    finally:
        client.close()


def test_stomp_heart_beats_are_bare_eol_messages(broker: RabbitMQ) -> None:
    """Every server heart-beat is a WebSocket text message of one "\\n". RabbitMQ counts
    heart-beats in whole seconds: asked for 500 ms, it announces and sends 1000 ms."""
    client = Stomp(broker)
    try:
        connected = client.connect(broker, heart_beat="0,500")
        server = parse_heart_beat(connected.get("heart-beat"))
        assert server == (1000, 0)  # it sends every second, and wants nothing from us
        assert negotiate_heart_beat((0, 500), server) == (0, 1000)
        arrived = []
        for _ in range(3):
            assert client.until(lambda item: isinstance(item, Heartbeat), deadline=5.0) == [HEARTBEAT]
            arrived.append(time.monotonic())
        gaps = [later - earlier for earlier, later in zip(arrived, arrived[1:], strict=False)]
        assert all(0.5 < gap < 1.6 for gap in gaps), gaps
        assert all(item == HEARTBEAT for item in client.seen[1:])  # nothing else came
    finally:
        client.close()


def test_stomp_wrong_password_is_an_error_frame_and_the_socket_stays_open(broker: RabbitMQ) -> None:
    client = Stomp(broker)
    try:
        error = client.connect(broker, passcode="wrong")
        assert error.command == "ERROR"
        assert error["message"] == "Bad CONNECT"
        assert "Access refused" in error.text
        # STOMP 1.2 says a server SHOULD close after ERROR; RabbitMQ 3.10 web-stomp does not
        # (a client must close itself)
        client.ws.settimeout(1.0)
        with pytest.raises(websocket.WebSocketTimeoutException):
            client.ws.recv()
        assert broker.connections() == 0 == broker.metric_connections()
    finally:
        client.close()


def test_stomp_disconnect_with_receipt_ends_the_connection(broker: RabbitMQ) -> None:
    client = Stomp(broker)
    try:
        client.connect(broker)
        client.send("DISCONNECT", {"receipt": "bye"})
        # RabbitMQ 3.10 closes with 1000 "STOMP died" and, as seen here, no RECEIPT first
        with pytest.raises(Closed) as closed:
            client.until(lambda item: isinstance(item, StompFrame) and item.get("receipt-id") == "bye", count=2)
        assert closed.value.code in (1000, None)
    finally:
        client.close()


def test_web_stomp_subprotocols(broker: RabbitMQ) -> None:
    """web-stomp picks one of v10/v11/v12.stomp, and answers a foreign one with no subprotocol
    at all (websocket-client then refuses the handshake)."""
    for offered in ("v10.stomp", "v11.stomp", "v12.stomp"):
        client = Stomp(broker, offered)
        assert client.ws.getsubprotocol() == offered
        client.close()
    with pytest.raises(websocket.WebSocketException, match="Invalid WebSocket Header"):
        Stomp(broker, "mqtt")


# -- MQTT over web-mqtt ---------------------------------------------------------------------------


def test_mqtt_connect_subscribe_publish_qos1_and_ping(broker: RabbitMQ) -> None:
    subscriber, publisher = Mqtt(broker), Mqtt(broker)
    try:
        assert subscriber.ws.getsubprotocol() == "mqtt"
        connack = subscriber.connect(broker, "sp-sub")
        assert connack.accepted and not connack.session_present
        assert publisher.connect(broker, "sp-pub").accepted
        assert broker.connections() == 2 == broker.tracked_connections() == broker.metric_connections()

        subscriber.send(mqtt.Subscribe(1, (mqtt.Subscription("room/0", 1),)))
        [suback] = subscriber.until(mqtt.Suback)
        assert suback == mqtt.Suback(1, (1,))

        publisher.send(mqtt.Publish("room/0", b"sp1|u#1|room-0|1|1.000000|", qos=1, packet_id=7))
        [puback] = publisher.until(mqtt.Puback)
        assert puback == mqtt.Puback(7)

        [delivered] = subscriber.until(mqtt.Publish)
        assert delivered.payload == b"sp1|u#1|room-0|1|1.000000|"
        assert (delivered.topic, delivered.qos, delivered.dup) == ("room/0", 1, False)
        subscriber.send(mqtt.Puback(delivered.packet_id))

        subscriber.send(mqtt.Pingreq())
        assert subscriber.until(mqtt.Pingresp) == [mqtt.Pingresp()]

        publisher.send(mqtt.Publish("room/0", b"qos0", qos=0))
        [second] = subscriber.until(mqtt.Publish)
        assert second.payload == b"qos0" and second.qos == 0 and second.packet_id is None

        subscriber.send(mqtt.Disconnect())
        with pytest.raises(Closed):
            subscriber.until(mqtt.Connack)  # nothing more: the broker closes
    finally:
        subscriber.close()
        publisher.close()


def test_mqtt_persistent_session_redelivers_unacked_with_dup_and_queues_offline(broker: RabbitMQ) -> None:
    """clean session 0 + QoS 1: what was delivered but never PUBACKed comes again after a
    reconnect with DUP set (an at-least-once duplicate by design); what was published while
    the subscriber was away comes once, DUP clear."""
    subscriber, publisher = Mqtt(broker), Mqtt(broker)
    try:
        assert subscriber.connect(broker, "sp-durable", clean=False).accepted
        subscriber.send(mqtt.Subscribe(1, (mqtt.Subscription("room/durable", 1),)))
        subscriber.until(mqtt.Suback)
        assert publisher.connect(broker, "sp-pub-2").accepted
        publisher.send(mqtt.Publish("room/durable", b"first", qos=1, packet_id=1))
        publisher.until(mqtt.Puback)
        [first] = subscriber.until(mqtt.Publish)
        assert first.payload == b"first" and not first.dup
        subscriber.close()  # no PUBACK, no DISCONNECT: the connection just goes away

        assert broker.wait_connections(1) == 1, "the broker never noticed the subscriber go"
        publisher.send(mqtt.Publish("room/durable", b"while away", qos=1, packet_id=2))
        publisher.until(mqtt.Puback)

        subscriber = Mqtt(broker)
        connack = subscriber.connect(broker, "sp-durable", clean=False)
        assert connack.accepted and connack.session_present
        again = subscriber.until(mqtt.Publish, count=2)
        for packet in again:
            subscriber.send(mqtt.Puback(packet.packet_id))
        assert [(packet.payload, packet.dup) for packet in again] == [(b"first", True), (b"while away", False)]

        subscriber.send(mqtt.Disconnect())
        subscriber.close()
        cleaner = Mqtt(broker)  # a clean session ends the durable one (and its queue)
        assert not cleaner.connect(broker, "sp-durable", clean=True).session_present
        cleaner.send(mqtt.Disconnect())
        cleaner.close()
    finally:
        subscriber.close()
        publisher.close()


def test_mqtt_wrong_password_is_a_websocket_close_not_a_connack(broker: RabbitMQ) -> None:
    """MQTT 3.1.1 says CONNACK with return code 4 (or 5); RabbitMQ 3.10 web-mqtt sends no
    CONNACK and closes the WebSocket with 1002 "unauthenticated"."""
    client = Mqtt(broker)
    try:
        with pytest.raises(Closed) as closed:
            client.connect(broker, "sp-bad", password="wrong")
        assert (closed.value.code, closed.value.reason) == (1002, "unauthenticated")
        assert not [packet for packet in client.seen if isinstance(packet, mqtt.Connack)]
    finally:
        client.close()


def test_mqtt_5_is_refused_with_a_websocket_close(broker: RabbitMQ) -> None:
    """RabbitMQ 3.10 speaks MQTT 3.1 and 3.1.1 only (5.0 came with 3.13): a version 5 CONNECT
    gets no CONNACK (neither 0x84 nor 3.1.1's return code 1) but a WebSocket close 1011."""
    client = Mqtt(broker)
    try:
        client.send(mqtt.Connect("sp-v5", mqtt.MQTT_5, properties={"session_expiry_interval": 60},
                                 username=broker.user, password=broker.password.encode()), mqtt.MQTT_5)
        with pytest.raises(Closed) as closed:
            client.until(mqtt.Connack)
        assert closed.value.code in (1011, None)
    finally:
        client.close()


def test_web_mqtt_echoes_any_subprotocol(broker: RabbitMQ) -> None:
    """web-mqtt accepts whatever subprotocol is offered and echoes it back (even a wrong one)."""
    client = Mqtt(broker, "not-mqtt")
    try:
        assert client.ws.getsubprotocol() == "not-mqtt"
        assert client.connect(broker, "sp-any").accepted
        client.send(mqtt.Disconnect())
    finally:
        client.close()
