"""MQTT control packets as values: encode and decode, no socket (MQTT 3.1.1 and 5.0).

Exactly what a load-testing client needs: CONNECT, CONNACK, PUBLISH (QoS 0 and 1, DUP,
retain), PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP and DISCONNECT. Every other packet
type decodes as `OtherPacket` (its type, flags and body), so a session can refuse it without
the codec raising. Protocol version 4 is MQTT 3.1.1, 5 is MQTT 5.0; in 5.0 the packets
carry properties (all of them are read and written from one table, `PROPERTIES`, by
name: `session_expiry_interval`, `reason_string`, ...) and reason codes (`reason_name()`).

Over WebSocket (subprotocol `mqtt`, binary messages) a message may carry several packets or
part of one, so `PacketReader` takes bytes as they come and hands back whole packets.

Hostile input never gets further than an `MQTTPacketError` (a `ValueError`, with the MQTT
5.0 reason code for it: 0x81 malformed, 0x82 protocol error, 0x95 too large): every length
is checked before it is read, and `PacketReader` bounds a packet's size.

Why no library: none that is maintained, light, sans-I/O and speaks both 3.1.1 and 5.0 can
be installed here. `mqttproto` is not on the package index this project installs from; the
sans-I/O `moat-lib-mqtt` (0.8.7) refuses any protocol level but 5 and requires anyio, attrs,
httpx-ws and stamina; paho-mqtt packs and parses inside its own socket loop; `mqtt-codec`'s
last release (1.0.2) is from January 2019.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Any

MQTT_311 = 4
"""Protocol level of MQTT 3.1.1."""
MQTT_5 = 5
"""Protocol level of MQTT 5.0."""
VERSIONS = (MQTT_311, MQTT_5)

MAX_REMAINING_LENGTH = 268_435_455
"""The largest remaining length four variable-byte-integer bytes can say (MQTT 2.2.3 / 1.5.5)."""
DEFAULT_MAX_PACKET = 1 << 20
"""`PacketReader`'s default bound on one packet (1 MiB; the protocol allows 256 MiB)."""


class PacketType(enum.IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


MALFORMED = 0x81
PROTOCOL_ERROR = 0x82
PACKET_TOO_LARGE = 0x95


class MQTTPacketError(ValueError):
    """Bytes that are no valid packet (decode), or a packet that cannot be written (encode).
    `reason_code` is the MQTT 5.0 code a DISCONNECT would give for it."""

    def __init__(self, message: str, reason_code: int = MALFORMED) -> None:
        super().__init__(message)
        self.reason_code = reason_code


# -- reason codes -------------------------------------------------------------------------

CONNACK_311 = {
    0: "accepted",
    1: "unacceptable_protocol_version",
    2: "identifier_rejected",
    3: "server_unavailable",
    4: "bad_username_or_password",
    5: "not_authorized",
}
"""MQTT 3.1.1 CONNACK return codes (3.2.2.3)."""

REASON_CODES = {
    0x00: "success",
    0x01: "granted_qos_1",
    0x02: "granted_qos_2",
    0x04: "disconnect_with_will_message",
    0x10: "no_matching_subscribers",
    0x11: "no_subscription_existed",
    0x18: "continue_authentication",
    0x19: "re_authenticate",
    0x80: "unspecified_error",
    0x81: "malformed_packet",
    0x82: "protocol_error",
    0x83: "implementation_specific_error",
    0x84: "unsupported_protocol_version",
    0x85: "client_identifier_not_valid",
    0x86: "bad_user_name_or_password",
    0x87: "not_authorized",
    0x88: "server_unavailable",
    0x89: "server_busy",
    0x8A: "banned",
    0x8B: "server_shutting_down",
    0x8C: "bad_authentication_method",
    0x8D: "keep_alive_timeout",
    0x8E: "session_taken_over",
    0x8F: "topic_filter_invalid",
    0x90: "topic_name_invalid",
    0x91: "packet_identifier_in_use",
    0x92: "packet_identifier_not_found",
    0x93: "receive_maximum_exceeded",
    0x94: "topic_alias_invalid",
    0x95: "packet_too_large",
    0x96: "message_rate_too_high",
    0x97: "quota_exceeded",
    0x98: "administrative_action",
    0x99: "payload_format_invalid",
    0x9A: "retain_not_supported",
    0x9B: "qos_not_supported",
    0x9C: "use_another_server",
    0x9D: "server_moved",
    0x9E: "shared_subscriptions_not_supported",
    0x9F: "connection_rate_exceeded",
    0xA0: "maximum_connect_time",
    0xA1: "subscription_identifiers_not_supported",
    0xA2: "wildcard_subscriptions_not_supported",
}
"""MQTT 5.0 reason codes (2.4); a code keeps its meaning across packets, but for 0x00."""


def reason_name(packet_type: PacketType | int, code: int, version: int = MQTT_5) -> str:
    """A reason (5.0) or return (3.1.1) code's name, as the packet it came in means it."""
    if packet_type == PacketType.CONNACK and version == MQTT_311:
        return CONNACK_311.get(code, f"reserved_{code}")
    if packet_type == PacketType.SUBACK:
        if code in (0, 1, 2):
            return f"granted_qos_{code}"
        if code == 0x80 and version == MQTT_311:
            return "failure"
    if code == 0 and packet_type == PacketType.DISCONNECT:
        return "normal_disconnection"
    return REASON_CODES.get(code, f"unknown_0x{code:02x}")


def is_failure(code: int) -> bool:
    """MQTT 5.0: a reason code of 0x80 or more is a failure."""
    return code >= 0x80


# -- properties (MQTT 5.0, 2.2.2.2) ----------------------------------------------------------

_BYTE, _U16, _U32, _VARINT, _STRING, _BINARY, _PAIR = "byte", "u16", "u32", "varint", "string", "binary", "pair"

PROPERTIES: dict[int, tuple[str, str]] = {
    0x01: ("payload_format_indicator", _BYTE),
    0x02: ("message_expiry_interval", _U32),
    0x03: ("content_type", _STRING),
    0x08: ("response_topic", _STRING),
    0x09: ("correlation_data", _BINARY),
    0x0B: ("subscription_identifier", _VARINT),
    0x11: ("session_expiry_interval", _U32),
    0x12: ("assigned_client_identifier", _STRING),
    0x13: ("server_keep_alive", _U16),
    0x15: ("authentication_method", _STRING),
    0x16: ("authentication_data", _BINARY),
    0x17: ("request_problem_information", _BYTE),
    0x18: ("will_delay_interval", _U32),
    0x19: ("request_response_information", _BYTE),
    0x1A: ("response_information", _STRING),
    0x1C: ("server_reference", _STRING),
    0x1F: ("reason_string", _STRING),
    0x21: ("receive_maximum", _U16),
    0x22: ("topic_alias_maximum", _U16),
    0x23: ("topic_alias", _U16),
    0x24: ("maximum_qos", _BYTE),
    0x25: ("retain_available", _BYTE),
    0x26: ("user_property", _PAIR),
    0x27: ("maximum_packet_size", _U32),
    0x28: ("wildcard_subscription_available", _BYTE),
    0x29: ("subscription_identifier_available", _BYTE),
    0x2A: ("shared_subscription_available", _BYTE),
}
"""Identifier -> (name, type). `user_property` is a list of (name, value) pairs and
`subscription_identifier` may repeat in PUBLISH (a list); any other property appears once."""
PROPERTY_IDS = {name: (identifier, kind) for identifier, (name, kind) in PROPERTIES.items()}
_REPEATABLE = frozenset({"user_property", "subscription_identifier"})

Properties = dict[str, Any]


# -- primitives -----------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """A Variable Byte Integer (MQTT 3.1.1 2.2.3, 5.0 1.5.5): 7 bits a byte, low first."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise MQTTPacketError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_string(text: str) -> bytes:
    """A UTF-8 Encoded String: two-byte length, then the octets (no U+0000 allowed)."""
    raw = text.encode("utf-8")
    if "\x00" in text:
        raise MQTTPacketError("an MQTT string must not contain U+0000")
    return encode_binary(raw)


def encode_binary(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise MQTTPacketError(f"{len(raw)} octets do not fit a two-byte length")
    return struct.pack("!H", len(raw)) + raw


def encode_properties(properties: Properties | None, version: int) -> bytes:
    """The property block (length, then each property) for MQTT 5.0; nothing for 3.1.1."""
    if version != MQTT_5:
        if properties:
            raise MQTTPacketError(f"MQTT 3.1.1 has no properties: {sorted(properties)}")
        return b""
    body = bytearray()
    for name, value in (properties or {}).items():
        if name not in PROPERTY_IDS:
            raise MQTTPacketError(f"no MQTT property {name!r}")
        identifier, kind = PROPERTY_IDS[name]
        values = value if name in _REPEATABLE and isinstance(value, list) else [value]
        for item in values:
            body += encode_varint(identifier) + _encode_property_value(name, kind, item)
    return encode_varint(len(body)) + bytes(body)


def _encode_property_value(name: str, kind: str, value: Any) -> bytes:
    try:
        if kind == _BYTE:
            return struct.pack("!B", value)
        if kind == _U16:
            return struct.pack("!H", value)
        if kind == _U32:
            return struct.pack("!I", value)
        if kind == _VARINT:
            return encode_varint(value)
        if kind == _STRING:
            return encode_string(value)
        if kind == _BINARY:
            return encode_binary(bytes(value))
        key, item = value
        return encode_string(key) + encode_string(item)
    except (struct.error, TypeError, ValueError) as error:
        raise MQTTPacketError(f"bad value for property {name}: {value!r} ({error})") from None


class _Reader:
    """Reads one packet's body from the front; every read is length-checked."""

    def __init__(self, data: bytes, packet: str) -> None:
        self.data, self.position, self.packet = data, 0, packet

    def left(self) -> int:
        return len(self.data) - self.position

    def take(self, count: int, what: str) -> bytes:
        if count > self.left():
            raise MQTTPacketError(f"{self.packet}: {what} needs {count} octets, {self.left()} left")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return struct.unpack("!H", self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return struct.unpack("!I", self.take(4, what))[0]

    def varint(self, what: str) -> int:
        value, shift = 0, 0
        for _ in range(4):
            digit = self.byte(what)
            value += (digit & 0x7F) << shift
            if not digit & 0x80:
                return value
            shift += 7
        raise MQTTPacketError(f"{self.packet}: {what} is a variable byte integer of more than 4 octets")

    def binary(self, what: str) -> bytes:
        return self.take(self.u16(what), what)

    def string(self, what: str) -> str:
        raw = self.binary(what)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MQTTPacketError(f"{self.packet}: {what} is not UTF-8") from None
        if "\x00" in text:
            raise MQTTPacketError(f"{self.packet}: {what} contains U+0000")
        return text

    def rest(self) -> bytes:
        return self.take(self.left(), "the payload")

    def properties(self, version: int) -> Properties:
        if version != MQTT_5:
            return {}
        length = self.varint("the property length")
        block = _Reader(self.take(length, "the properties"), self.packet)
        found: Properties = {}
        while block.left():
            identifier = block.varint("a property identifier")
            if identifier not in PROPERTIES:
                raise MQTTPacketError(f"{self.packet}: unknown property identifier 0x{identifier:02x}")
            name, kind = PROPERTIES[identifier]
            value = block._property_value(name, kind)
            if name in _REPEATABLE:
                found.setdefault(name, []).append(value)
            elif name in found:
                raise MQTTPacketError(f"{self.packet}: property {name} given twice", PROTOCOL_ERROR)
            else:
                found[name] = value
        return found

    def _property_value(self, name: str, kind: str) -> Any:
        if kind == _BYTE:
            return self.byte(name)
        if kind == _U16:
            return self.u16(name)
        if kind == _U32:
            return self.u32(name)
        if kind == _VARINT:
            return self.varint(name)
        if kind == _STRING:
            return self.string(name)
        if kind == _BINARY:
            return self.binary(name)
        return (self.string(name), self.string(name))

    def done(self) -> None:
        if self.left():
            raise MQTTPacketError(f"{self.packet}: {self.left()} octets after the end of the packet")


def _fixed(packet_type: PacketType, flags: int, body: bytes) -> bytes:
    return bytes([(packet_type << 4) | flags]) + encode_varint(len(body)) + body


def _check_packet_id(packet_id: int | None, packet: str) -> int:
    if packet_id is None or not 1 <= packet_id <= 0xFFFF:
        raise MQTTPacketError(f"{packet}: packet identifier must be 1..65535, not {packet_id!r}", PROTOCOL_ERROR)
    return packet_id


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise MQTTPacketError(f"protocol level {version!r} is neither 4 (3.1.1) nor 5 (5.0)")


# -- packets ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Will:
    """The message the server publishes for a client that goes away without DISCONNECT."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT: the client opens a session. `version` is its protocol level (4 or 5);
    `clean_start` is 3.1.1's Clean Session. With 5.0, a session outlives the connection
    only with a `session_expiry_interval` property (seconds)."""

    client_id: str = ""
    version: int = MQTT_311
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.CONNECT

    def encode(self, version: int | None = None) -> bytes:
        version = self.version if version is None else version
        _check_version(version)
        if not 0 <= self.keep_alive <= 0xFFFF:
            raise MQTTPacketError(f"keep alive {self.keep_alive} is not 0..65535 seconds")
        if version == MQTT_311 and self.password is not None and self.username is None:
            raise MQTTPacketError("MQTT 3.1.1 allows a password only with a user name")
        flags = (0x80 if self.username is not None else 0) | (0x40 if self.password is not None else 0)
        flags |= 0x02 if self.clean_start else 0
        if self.will is not None:
            if self.will.qos not in (0, 1, 2):
                raise MQTTPacketError(f"will QoS {self.will.qos} is not 0, 1 or 2")
            flags |= 0x04 | (self.will.qos << 3) | (0x20 if self.will.retain else 0)
        body = encode_string("MQTT") + bytes([version, flags]) + struct.pack("!H", self.keep_alive)
        body += encode_properties(self.properties, version)
        body += encode_string(self.client_id)
        if self.will is not None:
            body += encode_properties(self.will.properties, version)
            body += encode_string(self.will.topic) + encode_binary(self.will.payload)
        if self.username is not None:
            body += encode_string(self.username)
        if self.password is not None:
            body += encode_binary(self.password)
        return _fixed(PacketType.CONNECT, 0, body)


@dataclasses.dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK: the server's answer to CONNECT. `reason_code` is 3.1.1's return code
    (0 accepted, 1-5 refused) or 5.0's reason code (0 success, >= 0x80 refused)."""

    session_present: bool = False
    reason_code: int = 0
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.CONNACK

    @property
    def accepted(self) -> bool:
        return self.reason_code == 0

    def reason(self, version: int) -> str:
        return reason_name(PacketType.CONNACK, self.reason_code, version)

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        body = bytes([0x01 if self.session_present else 0, self.reason_code])
        return _fixed(PacketType.CONNACK, 0, body + encode_properties(self.properties, version))


@dataclasses.dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH: an application message, either way. `packet_id` is there for QoS 1 and 2
    only; `dup` marks a redelivery of a QoS > 0 message (never set for QoS 0)."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.PUBLISH

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        if self.qos not in (0, 1, 2):
            raise MQTTPacketError(f"QoS {self.qos} is not 0, 1 or 2")
        if self.qos == 0 and (self.dup or self.packet_id is not None):
            raise MQTTPacketError("a QoS 0 PUBLISH has neither DUP nor a packet identifier", PROTOCOL_ERROR)
        if not self.topic and not (version == MQTT_5 and "topic_alias" in self.properties):
            raise MQTTPacketError("a PUBLISH needs a topic name", PROTOCOL_ERROR)
        if "+" in self.topic or "#" in self.topic:
            raise MQTTPacketError(f"a topic name has no wildcards: {self.topic!r}", 0x90)
        body = encode_string(self.topic)
        if self.qos:
            body += struct.pack("!H", _check_packet_id(self.packet_id, "PUBLISH"))
        body += encode_properties(self.properties, version) + bytes(self.payload)
        flags = (0x08 if self.dup else 0) | (self.qos << 1) | (0x01 if self.retain else 0)
        return _fixed(PacketType.PUBLISH, flags, body)


@dataclasses.dataclass(frozen=True, slots=True)
class Puback:
    """PUBACK: a QoS 1 PUBLISH with `packet_id` is done (5.0: `reason_code`, 0 success)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.PUBACK

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        body = struct.pack("!H", _check_packet_id(self.packet_id, "PUBACK"))
        if version == MQTT_5 and (self.reason_code or self.properties):
            body += bytes([self.reason_code])
            if self.properties:
                body += encode_properties(self.properties, version)
        elif version == MQTT_311 and self.reason_code:
            raise MQTTPacketError("an MQTT 3.1.1 PUBACK has no reason code")
        return _fixed(PacketType.PUBACK, 0, body)


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE and its options (all but `qos` are 5.0 only)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0

    def options(self, version: int) -> int:
        if self.qos not in (0, 1, 2) or self.retain_handling not in (0, 1, 2):
            raise MQTTPacketError(f"bad subscription options for {self.topic_filter!r}", PROTOCOL_ERROR)
        extra = (0x04 if self.no_local else 0) | (0x08 if self.retain_as_published else 0)
        extra |= self.retain_handling << 4
        if extra and version == MQTT_311:
            raise MQTTPacketError("MQTT 3.1.1 subscriptions take a QoS only")
        return self.qos | extra


@dataclasses.dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: one or more topic filters, answered by a SUBACK with the same `packet_id`."""

    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.SUBSCRIBE

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        if not self.subscriptions:
            raise MQTTPacketError("a SUBSCRIBE needs at least one topic filter", PROTOCOL_ERROR)
        body = struct.pack("!H", _check_packet_id(self.packet_id, "SUBSCRIBE"))
        body += encode_properties(self.properties, version)
        for subscription in self.subscriptions:
            if not subscription.topic_filter:
                raise MQTTPacketError("a topic filter must not be empty", 0x8F)
            body += encode_string(subscription.topic_filter) + bytes([subscription.options(version)])
        return _fixed(PacketType.SUBSCRIBE, 0x02, body)


@dataclasses.dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: per topic filter, the granted QoS (0-2) or a failure code (>= 0x80)."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.SUBACK

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        body = struct.pack("!H", _check_packet_id(self.packet_id, "SUBACK"))
        body += encode_properties(self.properties, version) + bytes(self.reason_codes)
        return _fixed(PacketType.SUBACK, 0, body)


@dataclasses.dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ: the client's keep-alive; the server answers PINGRESP."""

    packet_type = PacketType.PINGREQ

    def encode(self, version: int = MQTT_311) -> bytes:
        return _fixed(PacketType.PINGREQ, 0, b"")


@dataclasses.dataclass(frozen=True, slots=True)
class Pingresp:
    packet_type = PacketType.PINGRESP

    def encode(self, version: int = MQTT_311) -> bytes:
        return _fixed(PacketType.PINGRESP, 0, b"")


@dataclasses.dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT: a clean end (3.1.1: client only; 5.0: either side, with a reason code)."""

    reason_code: int = 0
    properties: Properties = dataclasses.field(default_factory=dict)

    packet_type = PacketType.DISCONNECT

    def encode(self, version: int = MQTT_311) -> bytes:
        _check_version(version)
        if version == MQTT_311:
            if self.reason_code or self.properties:
                raise MQTTPacketError("an MQTT 3.1.1 DISCONNECT has no reason code or properties")
            return _fixed(PacketType.DISCONNECT, 0, b"")
        body = b""
        if self.reason_code or self.properties:
            body = bytes([self.reason_code]) + encode_properties(self.properties, version)
        return _fixed(PacketType.DISCONNECT, 0, body)


@dataclasses.dataclass(frozen=True, slots=True)
class OtherPacket:
    """A packet this codec does not read (QoS 2 flow, UNSUBSCRIBE/UNSUBACK, AUTH): kept raw."""

    packet_type: int
    flags: int
    body: bytes

    def encode(self, version: int = MQTT_311) -> bytes:
        return bytes([(self.packet_type << 4) | self.flags]) + encode_varint(len(self.body)) + self.body


Packet = Connect | Connack | Publish | Puback | Subscribe | Suback | Pingreq | Pingresp | Disconnect | OtherPacket


# -- decoding -------------------------------------------------------------------------------------


def split_packet(data: bytes, max_packet: int = MAX_REMAINING_LENGTH + 5) -> tuple[int, int, int] | None:
    """(first byte, header length, total length) of the packet at the front of `data`, or None
    while its fixed header is incomplete. Raises on a bad length or one over `max_packet`."""
    if not data:
        return None
    length, shift = 0, 0
    for index in range(1, 5):
        if index >= len(data):
            return None
        digit = data[index]
        length += (digit & 0x7F) << shift
        if not digit & 0x80:
            total = index + 1 + length
            if total > max_packet:
                raise MQTTPacketError(f"a packet of {total} octets is over the limit of {max_packet}",
                                      PACKET_TOO_LARGE)
            return data[0], index + 1, total
        shift += 7
    raise MQTTPacketError("the remaining length is a variable byte integer of more than 4 octets")


def decode(data: bytes, version: int = MQTT_311) -> Packet:
    """Exactly one whole packet. `version` is the session's protocol level (a CONNECT says its own)."""
    _check_version(version)
    data = bytes(data)
    found = split_packet(data)
    if found is None or found[2] > len(data):
        raise MQTTPacketError(f"truncated packet: {len(data)} octets")
    first, header, total = found
    if total != len(data):
        raise MQTTPacketError(f"{len(data) - total} octets after the packet")
    return _decode_body(first >> 4, first & 0x0F, data[header:], version)


def _flags(name: str, flags: int, expected: int) -> None:
    if flags != expected:
        raise MQTTPacketError(f"{name}: fixed header flags 0x{flags:x}, must be 0x{expected:x}")


def _decode_body(packet_type: int, flags: int, body: bytes, version: int) -> Packet:
    if packet_type == PacketType.PUBLISH:
        return _decode_publish(flags, body, version)
    if packet_type == PacketType.CONNECT:
        _flags("CONNECT", flags, 0)
        return _decode_connect(body)
    if packet_type == PacketType.CONNACK:
        _flags("CONNACK", flags, 0)
        reader = _Reader(body, "CONNACK")
        acknowledge = reader.byte("the acknowledge flags")
        if acknowledge & 0xFE:
            raise MQTTPacketError("CONNACK: reserved acknowledge flags set")
        code = reader.byte("the return code")
        properties = reader.properties(version) if version == MQTT_5 and reader.left() else {}
        reader.done()
        return Connack(bool(acknowledge & 1), code, properties)
    if packet_type == PacketType.PUBACK:
        _flags("PUBACK", flags, 0)
        reader = _Reader(body, "PUBACK")
        packet_id = reader.u16("the packet identifier")
        code, properties = 0, {}
        if version == MQTT_5 and reader.left():
            code = reader.byte("the reason code")
            properties = reader.properties(version) if reader.left() else {}
        reader.done()
        return Puback(packet_id, code, properties)
    if packet_type == PacketType.SUBSCRIBE:
        _flags("SUBSCRIBE", flags, 0x02)
        return _decode_subscribe(body, version)
    if packet_type == PacketType.SUBACK:
        _flags("SUBACK", flags, 0)
        reader = _Reader(body, "SUBACK")
        packet_id = reader.u16("the packet identifier")
        properties = reader.properties(version)
        codes = tuple(reader.rest())
        if not codes:
            raise MQTTPacketError("SUBACK: no return codes", PROTOCOL_ERROR)
        return Suback(packet_id, codes, properties)
    if packet_type in (PacketType.PINGREQ, PacketType.PINGRESP):
        name = PacketType(packet_type).name
        _flags(name, flags, 0)
        if body:
            raise MQTTPacketError(f"{name}: a body of {len(body)} octets, must be empty")
        return Pingreq() if packet_type == PacketType.PINGREQ else Pingresp()
    if packet_type == PacketType.DISCONNECT:
        _flags("DISCONNECT", flags, 0)
        reader = _Reader(body, "DISCONNECT")
        code, properties = 0, {}
        if version == MQTT_5 and reader.left():
            code = reader.byte("the reason code")
            properties = reader.properties(version) if reader.left() else {}
        reader.done()
        return Disconnect(code, properties)
    if packet_type == 0:
        raise MQTTPacketError("packet type 0 is reserved")
    return OtherPacket(packet_type, flags, body)


def _decode_publish(flags: int, body: bytes, version: int) -> Publish:
    dup, qos, retain = bool(flags & 0x08), (flags >> 1) & 0x03, bool(flags & 0x01)
    if qos == 3:
        raise MQTTPacketError("PUBLISH: QoS 3 does not exist")
    if dup and qos == 0:
        raise MQTTPacketError("PUBLISH: DUP set on a QoS 0 message", PROTOCOL_ERROR)
    reader = _Reader(body, "PUBLISH")
    topic = reader.string("the topic name")
    if "+" in topic or "#" in topic:
        raise MQTTPacketError(f"PUBLISH: wildcard in the topic name {topic!r}", 0x90)
    packet_id = None
    if qos:
        packet_id = reader.u16("the packet identifier")
        if packet_id == 0:
            raise MQTTPacketError("PUBLISH: packet identifier 0", PROTOCOL_ERROR)
    properties = reader.properties(version)
    return Publish(topic, reader.rest(), qos, retain, dup, packet_id, properties)


def _decode_connect(body: bytes) -> Connect:
    reader = _Reader(body, "CONNECT")
    name = reader.string("the protocol name")
    level = reader.byte("the protocol level")
    if name != "MQTT" or level not in VERSIONS:
        raise MQTTPacketError(f"CONNECT: protocol {name!r} level {level} is not MQTT 3.1.1 or 5.0", 0x84)
    flags = reader.byte("the connect flags")
    if flags & 0x01:
        raise MQTTPacketError("CONNECT: the reserved connect flag is set")
    will_flag, will_qos, will_retain = bool(flags & 0x04), (flags >> 3) & 0x03, bool(flags & 0x20)
    if will_qos == 3 or (not will_flag and (will_qos or will_retain)):
        raise MQTTPacketError("CONNECT: will QoS or retain without a will, or will QoS 3")
    has_user, has_password = bool(flags & 0x80), bool(flags & 0x40)
    if level == MQTT_311 and has_password and not has_user:
        raise MQTTPacketError("CONNECT: a password without a user name (MQTT 3.1.1)")
    keep_alive = reader.u16("the keep alive")
    properties = reader.properties(level)
    client_id = reader.string("the client identifier")
    will = None
    if will_flag:
        will_properties = reader.properties(level)
        will = Will(reader.string("the will topic"), reader.binary("the will payload"), will_qos, will_retain,
                    will_properties)
    username = reader.string("the user name") if has_user else None
    password = reader.binary("the password") if has_password else None
    reader.done()
    return Connect(client_id, level, bool(flags & 0x02), keep_alive, username, password, will, properties)


def _decode_subscribe(body: bytes, version: int) -> Subscribe:
    reader = _Reader(body, "SUBSCRIBE")
    packet_id = reader.u16("the packet identifier")
    properties = reader.properties(version)
    subscriptions = []
    while reader.left():
        topic_filter = reader.string("a topic filter")
        options = reader.byte("the subscription options")
        reserved = 0xFC if version == MQTT_311 else 0xC0
        if options & reserved or options & 0x03 == 3 or (options >> 4) & 0x03 == 3:
            raise MQTTPacketError(f"SUBSCRIBE: bad options 0x{options:02x} for {topic_filter!r}")
        subscriptions.append(Subscription(topic_filter, options & 0x03, bool(options & 0x04), bool(options & 0x08),
                                          (options >> 4) & 0x03))
    if not subscriptions:
        raise MQTTPacketError("SUBSCRIBE: no topic filter", PROTOCOL_ERROR)
    return Subscribe(packet_id, tuple(subscriptions), properties)


class PacketReader:
    """Whole packets out of a byte stream (MQTT over WebSocket may split or join packets
    across messages). `feed()` returns what is complete; the rest waits for more bytes."""

    def __init__(self, version: int = MQTT_311, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        _check_version(version)
        self.version = version
        self.max_packet = max_packet
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Octets received that do not make a whole packet yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """Take `data`; the packets it completes, in order. After an MQTTPacketError the
        stream is unusable (MQTT: close the connection)."""
        self._buffer += data
        packets: list[Packet] = []
        while True:
            found = split_packet(bytes(self._buffer[:5]), self.max_packet)
            if found is None or found[2] > len(self._buffer):
                return packets
            first, header, total = found
            body = bytes(self._buffer[header:total])
            del self._buffer[:total]
            packets.append(_decode_body(first >> 4, first & 0x0F, body, self.version))
