"""The MQTT session with literal packets: no socket, no broker (tests/socketproof/test_mqtt_runs.py
runs it against a real RabbitMQ, MQTT 3.1.1 only: RabbitMQ 3.10 has no MQTT 5, so 5 is tested here)."""

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
)
from client.adapters import AdapterSettings, build_adapter
from client.adapters import mqtt_packets as mqtt
from client.adapters.mqtt import MqttAdapter, MqttSession, client_id

CONTEXT = SessionContext("user-1", "chat-p0-5#4@p0.595bf3", token="TOKEN")


def session(**values: object) -> MqttSession:
    return MqttAdapter(AdapterSettings(values=dict(values))).session(CONTEXT)


def connected(s: MqttSession, present: bool = False) -> Ready:
    [ready] = s.receive(b"\x20\x02" + bytes([1 if present else 0, 0]))
    assert isinstance(ready, Ready)
    return ready


def test_built_in_with_its_capabilities() -> None:
    adapter = build_adapter("mqtt", AdapterSettings())
    assert adapter.capabilities == {PUBLISH_ACK, SUBSCRIBE, HEARTBEAT}
    assert not adapter.capabilities & {ROUND_TRIP, RESUME}
    assert MqttAdapter(AdapterSettings(values={"mqtt_qos": 0, "mqtt_keepalive": 0})).capabilities == {SUBSCRIBE}
    assert adapter.default_path == "/ws"


def test_resume_is_a_persistent_session_with_a_lasting_client_id() -> None:
    def capabilities(**values: object) -> frozenset[str]:
        return MqttAdapter(AdapterSettings(values=dict(values))).capabilities
    assert RESUME in capabilities(mqtt_clean_start="false", mqtt_client_id="{session}")
    assert RESUME in capabilities(mqtt_clean_start="false", mqtt_client_id="{identity}")
    assert RESUME not in capabilities(mqtt_clean_start="false")  # {label}: a new session per connection
    assert RESUME not in capabilities(mqtt_client_id="{session}")  # clean: nothing to take back
    s = session(mqtt_clean_start="false", mqtt_client_id="{session}")
    ready = connected(s, present=True)
    assert ready.resume is not None and ready.resume.resumed is True and ready.resume.requested is None
    assert connected(session(mqtt_clean_start="false", mqtt_client_id="{session}")).resume.resumed is False
    assert connected(session()).resume is None


def test_keep_alive_is_announced_and_paced_by_the_sessions_clock() -> None:
    s = session(mqtt_keepalive=2)
    assert mqtt.decode(s.start()[0]).keep_alive == 2
    assert s.tick_interval == 2.0 and s.tick() == ()  # nothing before CONNACK
    ready = connected(s)
    assert ready.heartbeat == (2.0, 2.0) and ready.heartbeat_kind == "steady"
    assert s.tick() == (b"\xc0\x00",)  # PINGREQ
    assert s.receive(b"\xd0\x00") == [KeepAlive()]  # PINGRESP: the heartbeat the check judges
    off = session(mqtt_keepalive=0)
    assert off.tick_interval is None and connected(off).heartbeat is None


def test_connect_with_username_password_keep_alive_off() -> None:
    s = session(mqtt_username="guest", mqtt_password="pw", mqtt_keepalive=0)
    assert s.handshake().subprotocols == ("mqtt",)
    [frame] = s.start()
    assert frame == (b"\x10\x2c\x00\x04MQTT\x04\xc2\x00\x00"  # level 4, user+password+clean, keep-alive 0
                     b"\x00\x15chat-p0-5_4_p0_595bf3\x00\x05guest\x00\x02pw")


def test_without_a_username_the_identity_and_token() -> None:
    [frame] = session().start()
    assert mqtt.decode(frame) == mqtt.Connect("chat-p0-5_4_p0_595bf3", mqtt.MQTT_311, True, 30, "user-1", b"TOKEN")


def test_persistent_mqtt5_session_asks_for_an_expiry() -> None:
    [frame] = session(mqtt_version="5", mqtt_clean_start="false", mqtt_client_id="{identity}").start()
    packet = mqtt.PacketReader(mqtt.MQTT_5).feed(frame)[0]
    assert isinstance(packet, mqtt.Connect)
    assert (packet.version, packet.clean_start, packet.client_id) == (5, False, "user-1")
    assert packet.properties == {"session_expiry_interval": 3600}


def test_session_client_id_is_kept_across_a_users_reconnects() -> None:
    again = SessionContext("user-1", "chat-p0-5#9@p0.595bf3")
    assert client_id("{session}", CONTEXT) == client_id("{session}", again) == "chat-p0-5_p0_595bf3"
    assert client_id("{label}", CONTEXT) != client_id("{label}", again)


def test_long_client_ids_are_shortened_to_23() -> None:
    long = SessionContext("u", "a-very-long-user-name-p0-12#345@p0.abcdef")
    made = client_id("{label}", long)
    assert len(made) == 23 and made.startswith("a-very-lon-")
    assert made != client_id("{label}", SessionContext("u", "a-very-long-user-name-p0-12#346@p0.abcdef"))


def test_connack_refused_and_closes_on_connect_are_named() -> None:
    s = session()
    [failed] = s.receive(b"\x20\x02\x00\x04")
    assert isinstance(failed, Failed) and failed.error.code == "bad_username_or_password"
    assert "--mqtt-password" in str(failed.error)
    error = session().closed(1002, "unauthenticated")
    assert error is not None and error.code == "access_refused" and "--mqtt-password" in str(error)
    error = session(mqtt_version="5").closed(1011, "")
    assert error is not None and error.code == "not_supported" and "--mqtt-version 3.1.1" in str(error)
    s = session()
    connected(s)
    assert s.closed(1000, "") is None


def test_subscribe_suback_publish_puback() -> None:
    s = session()
    assert connected(s, present=True).info["session_present"] is True
    corr, frame = s.subscribe("room-0")
    assert frame == b"\x82\x17\x00\x01\x00\x12socketproof/room-0\x01"
    assert s.receive(b"\x90\x03\x00\x01\x01") == [Reply(1)]
    stamp = Stamp("a", "room-0", 1, 1.0)
    corr, frame = s.publish("room-0", stamp, stamp.encode())
    assert corr == 2 and mqtt.decode(frame) == mqtt.Publish("socketproof/room-0", stamp.encode().encode(), 1,
                                                            packet_id=2)
    assert s.receive(b"\x40\x02\x00\x02") == [Reply(2)]
    _, frame = s.subscribe("room-1")
    [refused] = s.receive(b"\x90\x03\x00\x03\x80")
    assert isinstance(refused, Reply) and refused.error is not None and refused.error.code == "failure"


def test_qos0_publish_has_no_ack() -> None:
    s = session(mqtt_qos=0)
    connected(s)
    stamp = Stamp("a", "room-0", 1, 1.0)
    corr, frame = s.publish("room-0", stamp, stamp.encode())
    assert corr is None and frame[0] == 0x30


def test_deliveries_are_pubacked_and_dup_redeliveries_counted_apart() -> None:
    s = session()
    connected(s)
    stamp = Stamp("a", "room-0", 7, 1.0).encode()
    publish = mqtt.Publish("socketproof/room-0", stamp.encode(), 1, packet_id=9)
    events = s.receive(publish.encode())
    assert events == [Send(b"\x40\x02\x00\x09"), Delivery("room-0", Stamp.find(stamp), stamp)]
    # The same message again with DUP: counted apart, no second Delivery on this connection.
    again = mqtt.Publish("socketproof/room-0", stamp.encode(), 1, dup=True, packet_id=9)
    events = s.receive(again.encode())
    assert events[0] == Send(b"\x40\x02\x00\x09")
    assert [type(e) for e in events] == [Send, Push] and events[1].kind == "mqtt_redelivery"
    # A DUP redelivery this connection never got (a reconnect's): a Delivery, and counted apart.
    fresh = session()
    connected(fresh)
    events = fresh.receive(again.encode())
    assert [type(e) for e in events] == [Send, Push, Delivery]
    # Two packets in one message, and a packet split over two.
    qos0 = mqtt.Publish("other/topic", stamp.encode()).encode()
    [delivery, pong] = s.receive(qos0 + b"\xd0\x00")
    assert delivery == Delivery(None, Stamp.find(stamp), stamp) and pong == KeepAlive()
    assert s.receive(qos0[:3]) == []
    assert len(s.receive(qos0[3:])) == 1


def test_bad_input_never_raises_and_goodbye() -> None:
    s = session()
    [push] = s.receive("text")
    assert isinstance(push, Push) and push.kind == "invalid"
    [failed] = session().receive(b"\x20\x01\x00")
    assert isinstance(failed, Failed)
    assert s.goodbye() == ()
    connected(s)
    assert s.goodbye() == (b"\xe0\x00",)
    with pytest.raises(UnsupportedOperation):
        s.request("echo", "x")
    [failed] = session().negotiated("v12.stomp")
    assert isinstance(failed, Failed) and failed.error.code == "subprotocol"


def test_bad_options() -> None:
    for values, flag in [({"mqtt_qos": 2}, "--mqtt-qos"), ({"mqtt_topic": "a/#"}, "--mqtt-topic"),
                         ({"mqtt_clean_start": "maybe"}, "--mqtt-clean-start"),
                         ({"mqtt_version": "3.1"}, "--mqtt-version"), ({"mqtt_client_id": "x"}, "--mqtt-client-id"),
                         ({"mqtt_keepalive": -1}, "--mqtt-keepalive"), ({"mqtt_keepalive": "x"}, "--mqtt-keepalive")]:
        with pytest.raises(ValueError, match=flag):
            MqttAdapter(AdapterSettings(values=values))
