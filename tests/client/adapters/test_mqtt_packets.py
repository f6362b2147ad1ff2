"""client/adapters/mqtt_packets.py against the byte examples of the MQTT 3.1.1 and 5.0
specifications (OASIS), then whole packets both ways, streaming, and hostile input."""

from __future__ import annotations

import pytest

from client.adapters.mqtt_packets import (
    MQTT_5,
    MQTT_311,
    Connack,
    Connect,
    Disconnect,
    MQTTPacketError,
    OtherPacket,
    PacketReader,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    Will,
    decode,
    encode_string,
    encode_varint,
    reason_name,
    split_packet,
)

# -- the specifications' byte examples ----------------------------------------------------------


@pytest.mark.parametrize(("value", "octets"), [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_table(value: int, octets: bytes) -> None:
    """3.1.1 2.2.3 Table 2.4 and 5.0 1.5.5 Table 1-1: the bounds of 1 to 4 octets."""
    assert encode_varint(value) == octets
    # read back as a fixed header's remaining length: (first byte, header length, packet length)
    assert split_packet(b"\x30" + octets) == (0x30, 1 + len(octets), 1 + len(octets) + value)


def test_utf8_string_example() -> None:
    """3.1.1 1.5.3 Figure 1.1 and 5.0 1.5.4: "A\\U0002A6D4" is 00 05 41 F0 AA 9B 94."""
    assert encode_string("A\U0002A6D4") == bytes([0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94])


# 3.1.1 3.1.2.10 Figure 3.6, "Variable header non normative example": protocol name
# 00 04 'M' 'Q' 'T' 'T', level 4, flags 0xCE (user name, password, will QoS 1, will, clean
# session), keep alive 00 0A (10 s).
VH_311 = bytes([0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x04, 0xCE, 0x00, 0x0A])
# 5.0 3.1.2.12 Figure 3-7 "Variable Header example": the same with level 5, then properties
# length 5, Session Expiry Interval (identifier 17) of 10 s.
VH_5 = bytes([0x00, 0x04, 0x4D, 0x51, 0x54, 0x54, 0x05, 0xCE, 0x00, 0x0A, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0A])


def _spec_connect(version: int) -> Connect:
    properties = {"session_expiry_interval": 10} if version == MQTT_5 else {}
    return Connect("c", version, clean_start=True, keep_alive=10, username="u", password=b"p",
                   will=Will("w", b"bye", qos=1), properties=properties)


@pytest.mark.parametrize(("version", "variable_header"), [(MQTT_311, VH_311), (MQTT_5, VH_5)])
def test_connect_variable_header_examples(version: int, variable_header: bytes) -> None:
    wire = _spec_connect(version).encode()
    assert wire[0] == 0x10
    header_length = 2  # remaining length < 128: one octet
    assert wire[header_length:header_length + len(variable_header)] == variable_header
    assert decode(wire, version) == _spec_connect(version)
    # a CONNECT says its own level: a reader set to the other version still reads it
    other = MQTT_5 if version == MQTT_311 else MQTT_311
    assert decode(wire, other) == _spec_connect(version)


def test_connect_payload_order_311() -> None:
    """3.1.3: client id, will topic, will message, user name, password, each length-prefixed."""
    wire = _spec_connect(MQTT_311).encode()
    payload = wire[2 + len(VH_311):]
    assert payload == b"\x00\x01c" + b"\x00\x01w" + b"\x00\x03bye" + b"\x00\x01u" + b"\x00\x01p"


def test_connect_payload_order_5_has_will_properties() -> None:
    """5.0 3.1.3: the will properties come before the will topic (here: none, length 0)."""
    wire = _spec_connect(MQTT_5).encode()
    payload = wire[2 + len(VH_5):]
    assert payload == b"\x00\x01c" + b"\x00" + b"\x00\x01w" + b"\x00\x03bye" + b"\x00\x01u" + b"\x00\x01p"


def test_publish_variable_header_example() -> None:
    """3.1.1 3.3.2.3 Figure 3.11: topic "a/b", packet identifier 10 -> 00 03 'a' '/' 'b' 00 0A."""
    wire = Publish("a/b", b"hi", qos=1, packet_id=10).encode(MQTT_311)
    assert wire == bytes([0x32, 0x09, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x00, 0x0A]) + b"hi"
    assert decode(wire) == Publish("a/b", b"hi", qos=1, packet_id=10)
    # 5.0: the same with an empty property block before the payload
    wire5 = Publish("a/b", b"hi", qos=1, packet_id=10).encode(MQTT_5)
    assert wire5 == bytes([0x32, 0x0A, 0x00, 0x03, 0x61, 0x2F, 0x62, 0x00, 0x0A, 0x00]) + b"hi"


def test_subscribe_examples() -> None:
    """3.1.1 3.8.2 Figure 3.21 (packet identifier 10) and 3.8.3 Figure 3.23: "a/b" at QoS 1
    and "c/d" at QoS 2 -> 00 03 'a' '/' 'b' 01 00 03 'c' '/' 'd' 02; fixed header flags 0010."""
    packet = Subscribe(10, (Subscription("a/b", 1), Subscription("c/d", 2)))
    wire = packet.encode(MQTT_311)
    assert wire == bytes([0x82, 0x0E, 0x00, 0x0A,
                          0x00, 0x03, 0x61, 0x2F, 0x62, 0x01, 0x00, 0x03, 0x63, 0x2F, 0x64, 0x02])
    assert decode(wire) == packet


def test_suback_example() -> None:
    """3.1.1 3.9.3 Figure 3.26: success QoS 0, success QoS 2, failure -> 00 02 80."""
    wire = bytes([0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80])
    suback = decode(wire)
    assert suback == Suback(10, (0, 2, 0x80))
    assert [reason_name(PacketType.SUBACK, code, MQTT_311) for code in suback.reason_codes] == \
        ["granted_qos_0", "granted_qos_2", "failure"]  # type: ignore[union-attr]
    assert suback.encode(MQTT_311) == wire


@pytest.mark.parametrize(("packet", "octets"), [
    (Pingreq(), b"\xc0\x00"),
    (Pingresp(), b"\xd0\x00"),
    (Disconnect(), b"\xe0\x00"),
    (Puback(10), b"\x40\x02\x00\x0a"),
    (Connack(False, 0), b"\x20\x02\x00\x00"),
    (Connack(True, 0), b"\x20\x02\x01\x00"),
    (Connack(False, 4), b"\x20\x02\x00\x04"),
])
def test_fixed_size_packets_311(packet: object, octets: bytes) -> None:
    """3.1.1 3.2-3.14: CONNACK 20 02, PUBACK 40 02, PINGREQ C0 00, PINGRESP D0 00, DISCONNECT E0 00."""
    assert packet.encode(MQTT_311) == octets  # type: ignore[attr-defined]
    assert decode(octets, MQTT_311) == packet


# -- MQTT 5.0 reason codes and properties ----------------------------------------------------


def test_connack_5_with_properties_and_refusals() -> None:
    connack = Connack(True, 0, {"session_expiry_interval": 3600, "assigned_client_identifier": "auto-1",
                                "topic_alias_maximum": 10, "maximum_qos": 1})
    wire = connack.encode(MQTT_5)
    assert wire[:4] == bytes([0x20, len(wire) - 2, 0x01, 0x00])
    assert wire[5:10] == bytes([0x11, 0x00, 0x00, 0x0E, 0x10])  # Session Expiry Interval 3600
    assert decode(wire, MQTT_5) == connack
    refused = decode(b"\x20\x03\x00\x86\x00", MQTT_5)
    assert not refused.accepted and refused.reason(MQTT_5) == "bad_user_name_or_password"  # type: ignore[union-attr]
    assert decode(b"\x20\x02\x00\x05").reason(MQTT_311) == "not_authorized"  # type: ignore[union-attr]
    assert reason_name(PacketType.CONNACK, 1, MQTT_311) == "unacceptable_protocol_version"


def test_puback_and_disconnect_5_short_forms() -> None:
    """5.0 3.4.2.1 / 3.14.2.1: reason code and properties may be left out when success/none."""
    assert Puback(7).encode(MQTT_5) == b"\x40\x02\x00\x07"
    assert decode(b"\x40\x03\x00\x07\x10", MQTT_5) == Puback(7, 0x10)
    assert reason_name(PacketType.PUBACK, 0x10) == "no_matching_subscribers"
    assert Puback(7, 0x87, {"reason_string": "no"}).encode(MQTT_5) == b"\x40\x09\x00\x07\x87\x05\x1f\x00\x02no"
    assert decode(b"\x40\x09\x00\x07\x87\x05\x1f\x00\x02no", MQTT_5) == Puback(7, 0x87, {"reason_string": "no"})
    assert Disconnect().encode(MQTT_5) == b"\xe0\x00"
    assert decode(b"\xe0\x01\x8e", MQTT_5) == Disconnect(0x8E)
    assert reason_name(PacketType.DISCONNECT, 0x8E) == "session_taken_over"
    assert reason_name(PacketType.DISCONNECT, 0) == "normal_disconnection"


def test_repeatable_properties_and_subscription_options_5() -> None:
    publish = Publish("t", b"x", qos=1, dup=True, packet_id=3,
                      properties={"user_property": [("a", "1"), ("a", "2")], "subscription_identifier": [5]})
    assert decode(publish.encode(MQTT_5), MQTT_5) == publish
    subscribe = Subscribe(2, (Subscription("t/#", 1, no_local=True, retain_as_published=True, retain_handling=2),))
    wire = subscribe.encode(MQTT_5)
    assert wire[-1] == 0b0010_1101
    assert decode(wire, MQTT_5) == subscribe
    with pytest.raises(MQTTPacketError, match="QoS only"):
        subscribe.encode(MQTT_311)


# -- PUBLISH flags -------------------------------------------------------------------------------


def test_publish_flags_dup_qos_retain() -> None:
    wire = Publish("a", b"", qos=1, dup=True, retain=True, packet_id=1).encode()
    assert wire[0] == 0x3B
    assert decode(wire) == Publish("a", b"", qos=1, retain=True, dup=True, packet_id=1)
    assert decode(b"\x30\x03\x00\x01a") == Publish("a")
    with pytest.raises(MQTTPacketError, match="DUP"):
        decode(b"\x38\x03\x00\x01a")  # DUP on QoS 0
    with pytest.raises(MQTTPacketError, match="QoS 3"):
        decode(b"\x36\x05\x00\x01a\x00\x01")
    with pytest.raises(MQTTPacketError, match="packet identifier 0"):
        decode(b"\x32\x05\x00\x01a\x00\x00")
    with pytest.raises(MQTTPacketError):
        Publish("a", qos=1).encode()  # QoS 1 needs a packet id


# -- streaming -------------------------------------------------------------------------------------


def test_reader_joins_split_packets_and_splits_joined_ones() -> None:
    stream = Connack(False, 0).encode() + Publish("a/b", b"x" * 200, qos=1, packet_id=9).encode() + Pingresp().encode()
    reader = PacketReader(MQTT_311)
    seen = []
    for index in range(0, len(stream), 7):
        seen += reader.feed(stream[index:index + 7])
    assert [type(packet).__name__ for packet in seen] == ["Connack", "Publish", "Pingresp"]
    assert seen[1].payload == b"x" * 200 and reader.pending == 0
    assert reader.feed(stream) == seen


def test_reader_bounds_a_packet_and_other_types_stay_raw() -> None:
    reader = PacketReader(MQTT_311, max_packet=100)
    with pytest.raises(MQTTPacketError, match="over the limit") as caught:
        reader.feed(b"\x30\xff\x7f")  # announces 16 KiB
    assert caught.value.reason_code == 0x95
    assert decode(b"\x50\x02\x00\x01") == OtherPacket(PacketType.PUBREC, 0, b"\x00\x01")


# -- hostile input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"",
    b"\x30",
    b"\x30\xff\xff\xff\xff\x01",           # remaining length of five octets
    b"\x30\x05\x00\x01a",                  # shorter than it says
    b"\x30\x02\x00\x05",                   # topic longer than the packet
    b"\x30\x03\x00\x01\xff",               # topic not UTF-8
    b"\x30\x03\x00\x01+",                  # wildcard in a topic name
    b"\x20\x02\x02\x00",                   # reserved CONNACK flag
    b"\x82\x03\x00\x01\x00",               # SUBSCRIBE without a filter... and cut
    b"\x80\x06\x00\x01\x00\x01a\x00",      # SUBSCRIBE with flags 0000
    b"\x82\x06\x00\x01\x00\x01a\x03",      # SUBSCRIBE QoS 3
    b"\xc0\x01\x00",                       # PINGREQ with a body
    b"\x00\x00",                           # type 0 is reserved
    b"\x10\x0c\x00\x04MQTT\x03\x02\x00\x3c\x00\x00",  # protocol level 3
    b"\x10\x0c\x00\x04MQTT\x04\x03\x00\x3c\x00\x00",  # reserved connect flag
    b"\xe0\x00\x00",                       # octets after the packet
])
def test_malformed_packets_raise_mqtt_packet_error(data: bytes) -> None:
    with pytest.raises(MQTTPacketError):
        decode(data, MQTT_311)


def test_malformed_properties_raise() -> None:
    with pytest.raises(MQTTPacketError, match="unknown property"):
        decode(b"\x20\x05\x00\x00\x02\x7f\x00", MQTT_5)
    with pytest.raises(MQTTPacketError, match="given twice"):
        decode(b"\x20\x0d\x00\x00\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02", MQTT_5)
    with pytest.raises(MQTTPacketError, match="needs"):
        decode(b"\x20\x05\x00\x00\x09\x11\x00", MQTT_5)
    with pytest.raises(MQTTPacketError, match="no properties"):
        Connect("c", MQTT_311, properties={"session_expiry_interval": 1}).encode()
