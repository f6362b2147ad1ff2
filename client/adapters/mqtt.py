"""MQTT over WebSocket (subprotocol `mqtt`, binary messages): RabbitMQ web-mqtt, Mosquitto, EMQX,
HiveMQ; packets through client/adapters/mqtt_packets.py (3.1.1 and 5.0).

How the protocol maps onto the seam:

- start-up: CONNECT (--mqtt-version 3.1.1, or 5: unit-tested only, RabbitMQ 3.10 has no MQTT 5
  and closes with 1011) with --mqtt-username/--mqtt-password (without a user name: the identity
  and the run's token), a client id from --mqtt-client-id (`{label}`: the connection's label,
  sanitised to [0-9A-Za-z_-], shortened to 23 characters with a hash when longer) and
  --mqtt-clean-start. CONNACK accepted is `Ready`; refused is `Failed` with its reason. RabbitMQ
  answers a wrong password with no CONNACK but a close 1002: `closed()` names it.
- keep-alive (--mqtt-keepalive, seconds; 0: off): CONNECT announces it and the session's clock
  (`tick`) sends a PINGREQ every period, whatever else went out, so the broker's PINGRESPs come
  at that steady interval: each is a `KeepAlive`, `Ready.heartbeat` announces the period
  (HEARTBEAT) and the heartbeat check judges them. A broker that stops answering fails it.
- SUBSCRIBE is acked by its SUBACK (a failure code is a refused subscribe). PUBLISH is QoS 0
  (corr None: done once sent) or 1 (--mqtt-qos; its PUBACK is the publish ack, PUBLISH_ACK).
  Topics come from the run's channels through --mqtt-topic (`socketproof/{channel}`).
- an inbound PUBLISH is a `Delivery` (stamp found in the payload) on the channel its topic is
  for; a QoS 1 one is answered with a PUBACK (`Send`). One with DUP set is an at-least-once
  redelivery: it is also counted apart as a `Push(kind="mqtt_redelivery")`, and when this
  connection already got the same stamp it is only that (never a second Delivery): the
  duplicates check judges duplicates the protocol does not promise to avoid.
- goodbye: DISCONNECT.

RESUME with --mqtt-clean-start false and a client id that outlives a connection (`{session}` or
`{identity}`, not `{label}`): the session is the resume. A user's reconnect takes its session
back, its subscriptions still hold, and the broker sends what was published meanwhile (QoS 1:
queued for the session) and redelivers what was not PUBACKed (DUP). There is no offset:
`resume_after` is ignored, and `Ready.resume.resumed` is CONNACK's session-present flag (a
reconnect whose session the broker forgot is `not_resumed`). `{identity}` is shared by all of an
identity's connections (the pre-flight's two, a user's tabs): the broker closes the older one on
a takeover.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import re
from collections.abc import Sequence
from typing import Any

from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    RESUME,
    SUBSCRIBE,
    Adapter,
    AdapterSession,
    Delivery,
    Event,
    Failed,
    Frame,
    Handshake,
    KeepAlive,
    Push,
    Ready,
    Reply,
    ResumeInfo,
    Send,
    SessionContext,
    Stamp,
    UnsupportedOperation,
)
from client.adapters import AdapterOption, AdapterSettings
from client.adapters import mqtt_packets as mqtt
from client.errors import SocketproofError

SUBPROTOCOLS = ("mqtt",)
KNOWN_SUBPROTOCOLS = frozenset({"mqtt", "mqttv3.1"})
DEFAULT_TOPIC = "socketproof/{channel}"
SESSION_EXPIRY = 3600
"""Seconds an MQTT 5 persistent session outlives its connection (--mqtt-clean-start false)."""
SEEN_DUP_KEYS = 256
"""Stamps of QoS 1 deliveries a session remembers to tell a DUP redelivery it already got."""

OPTIONS = [
    AdapterOption("--mqtt-username", "", "mqtt: CONNECT's user name (empty: the user's identity, with the run's "
                                         "token as password unless --mqtt-password is set)"),
    AdapterOption("--mqtt-password", "", "mqtt: CONNECT's password (or $SOCKETPROOF_MQTT_PASSWORD)"),
    AdapterOption("--mqtt-topic", DEFAULT_TOPIC, "mqtt: the topic of a channel; {channel} is replaced by its name"),
    AdapterOption("--mqtt-qos", 1, "mqtt: QoS of publishes and subscriptions, 0 or 1 (1: PUBACK is the ack)", int),
    AdapterOption("--mqtt-clean-start", "true",
                  "mqtt: true: a fresh session per connection; false: a persistent one (QoS 1 messages are "
                  "queued and redelivered with DUP after a reconnect with the same client id)"),
    AdapterOption("--mqtt-client-id", "{label}",
                  "mqtt: client id template: {label} (the connection's, unique), {session} (the label without its "
                  "connection number: a user's reconnect takes its persistent session back) or {identity}"),
    AdapterOption("--mqtt-version", "3.1.1", "mqtt: protocol version, 3.1.1 or 5 (RabbitMQ 3.10 has 3.1.1 only)"),
    AdapterOption("--mqtt-keepalive", 30,
                  "mqtt: keep-alive in seconds (0: off): a PINGREQ every period; the broker's PINGRESPs are the "
                  "heartbeat the heartbeat check judges", int),
]

VERSIONS = {"3.1.1": mqtt.MQTT_311, "4": mqtt.MQTT_311, "5": mqtt.MQTT_5, "5.0": mqtt.MQTT_5}


class MqttError(SocketproofError):
    """A refused CONNECT or SUBSCRIBE, a close on CONNECT, or a packet the protocol does not allow."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


REFUSED_LOGIN = frozenset({"bad_username_or_password", "not_authorized", "bad_user_name_or_password"})
CREDENTIALS = "check --mqtt-username and --mqtt-password"


def client_id(template: str, context: SessionContext) -> str:
    """The client id for a connection: the template filled, sanitised to [0-9A-Za-z_-], and
    when longer than 23 characters (what every MQTT 3.1.1 server must accept) its first ten and
    a 12-character hash of the whole."""
    text = (template.replace("{label}", context.label).replace("{identity}", context.identity)
            .replace("{session}", re.sub(r"#\d+", "", context.label)))
    clean = re.sub(r"[^0-9A-Za-z_-]", "_", text)
    if len(clean) <= 23:
        return clean
    return f"{clean[:10]}-{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}"


class MqttSession(AdapterSession):
    """One connection's MQTT state: packet ids in flight, the topics subscribed."""

    def __init__(self, adapter: MqttAdapter, context: SessionContext) -> None:
        self.adapter = adapter
        self.context = context
        self.version = adapter.version
        self.reader = mqtt.PacketReader(adapter.version)
        self.connected = False
        self.session_present: bool | None = None
        self._ids = itertools.count(1)
        self._subscribes: dict[int, str] = {}
        self._seen: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=SEEN_DUP_KEYS)
        self.tick_interval: float | None = float(adapter.keepalive) if adapter.keepalive else None

    def handshake(self) -> Handshake:
        return Handshake(path=self.adapter.default_path, subprotocols=SUBPROTOCOLS)

    def negotiated(self, subprotocol: str | None) -> Sequence[Event]:
        if subprotocol in (None, "") or subprotocol in KNOWN_SUBPROTOCOLS:
            return ()
        return (Failed(MqttError("subprotocol", f"not supported: the server chose {subprotocol!r}; "
                                                "it must accept mqtt")),)

    def start(self) -> Sequence[Frame]:
        adapter = self.adapter
        username = adapter.username or (self.context.identity if (adapter.password or self.context.token) else None)
        password = adapter.password or self.context.token
        properties = {}
        if self.version == mqtt.MQTT_5 and not adapter.clean_start:
            properties["session_expiry_interval"] = SESSION_EXPIRY
        connect = mqtt.Connect(client_id(adapter.client_id, self.context), self.version, adapter.clean_start,
                               adapter.keepalive,
                               username, password.encode() if (password and username is not None) else None,
                               properties=properties)
        return (connect.encode(self.version),)

    def closed(self, code: int | None, reason: str) -> SocketproofError | None:
        """A close before CONNACK is the broker's refusal: RabbitMQ 3.10 closes a wrong password
        with 1002 and an MQTT 5 CONNECT with 1011, sending no CONNACK."""
        if self.connected or code is None:
            return None
        said = f" {reason!r}" if reason else ""
        if code == 1011 and self.version == mqtt.MQTT_5:
            return MqttError("not_supported", f"the broker closed the connection on an MQTT 5 CONNECT (close "
                                              f"{code}{said}): it may not speak MQTT 5, try --mqtt-version 3.1.1")
        if code in (1002, 1008) or "auth" in reason.lower():
            return MqttError("access_refused", f"the broker closed the connection on CONNECT (close {code}{said}): "
                                               f"{CREDENTIALS}")
        return MqttError("connect_refused", f"the broker closed the connection on CONNECT (close {code}{said})")

    def receive(self, frame: Frame) -> Sequence[Event]:
        if isinstance(frame, str):
            return (Push(frame, kind="invalid"),)
        try:
            packets = self.reader.feed(frame)
        except mqtt.MQTTPacketError as error:
            return (Failed(MqttError("malformed_packet", str(error))),)
        events: list[Event] = []
        for packet in packets:
            events.extend(self._packet(packet))
        return events

    def _packet(self, packet: mqtt.Packet) -> Sequence[Event]:
        if isinstance(packet, mqtt.Publish):
            return self._publish(packet)
        if isinstance(packet, mqtt.Puback):
            error = None
            if mqtt.is_failure(packet.reason_code):
                name = mqtt.reason_name(mqtt.PacketType.PUBACK, packet.reason_code, self.version)
                error = MqttError(name, "the broker refused the publish")
            return (Reply(packet.packet_id, error=error),)
        if isinstance(packet, mqtt.Suback):
            return self._suback(packet)
        if isinstance(packet, mqtt.Pingresp):
            return (KeepAlive(),)
        if isinstance(packet, mqtt.Connack):
            return self._connack(packet)
        if isinstance(packet, mqtt.Disconnect):
            name = mqtt.reason_name(mqtt.PacketType.DISCONNECT, packet.reason_code, self.version)
            return (Failed(MqttError(name, "the broker sent DISCONNECT")),)
        kind = getattr(packet, "packet_type", 0)
        return (Failed(MqttError("unexpected_packet", f"a client does not get packet type {int(kind)}")),)

    def _connack(self, packet: mqtt.Connack) -> Sequence[Event]:
        if self.connected:
            return (Failed(MqttError("protocol_error", "a second CONNACK")),)
        if not packet.accepted:
            name = packet.reason(self.version)
            hint = f": {CREDENTIALS}" if name in REFUSED_LOGIN else ""
            return (Failed(MqttError(name, f"the broker refused CONNECT (code {packet.reason_code}){hint}")),)
        self.connected = True
        self.session_present = packet.session_present
        keepalive = float(self.adapter.keepalive)
        resume = ResumeInfo(resumed=packet.session_present) if RESUME in self.adapter.capabilities else None
        return (Ready(info={"session_present": packet.session_present, **packet.properties},
                      heartbeat=(keepalive, keepalive) if keepalive else None, resume=resume),)

    def tick(self) -> Sequence[Frame]:
        """A PINGREQ every keep-alive period, however busy the connection: its PINGRESPs are the
        steady heartbeat the check judges (the spec asks one only after a quiet period; any
        rate up to that is allowed)."""
        return (mqtt.Pingreq().encode(self.version),) if self.connected else ()

    def _suback(self, packet: mqtt.Suback) -> Sequence[Event]:
        channel = self._subscribes.pop(packet.packet_id, None)
        refused = [code for code in packet.reason_codes if code >= 0x80]
        error = None
        if refused:
            name = mqtt.reason_name(mqtt.PacketType.SUBACK, refused[0], self.version)
            error = MqttError(name, f"the broker refused the subscription to {channel!r}")
        return (Reply(packet.packet_id, error=error),)

    def _publish(self, packet: mqtt.Publish) -> Sequence[Event]:
        events: list[Event] = []
        if packet.qos == 1 and packet.packet_id is not None:
            events.append(Send(mqtt.Puback(packet.packet_id).encode(self.version)))
        elif packet.qos == 2:
            return (Failed(MqttError("unexpected_packet", "a QoS 2 PUBLISH: this client subscribes with QoS 0 or 1")),)
        stamp = Stamp.find(packet.payload)
        channel = self.adapter.channel_of(packet.topic)
        key = (stamp.sender, stamp.channel, stamp.counter) if stamp is not None else None
        if packet.dup:
            events.append(Push({"topic": packet.topic, "packet_id": packet.packet_id}, kind="mqtt_redelivery"))
            if key is not None and key in self._seen:
                return events  # this connection has it already: the protocol's at-least-once, not a Delivery
        if key is not None and packet.qos:
            self._seen.append(key)
        body = packet.payload.decode("utf-8", errors="replace")
        events.append(Delivery(channel, stamp, body))
        return events

    def _packet_id(self) -> int:
        return (next(self._ids) - 1) % 0xFFFF + 1

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        raise UnsupportedOperation(self.adapter.name, name)

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        qos = self.adapter.qos
        packet_id = self._packet_id() if qos else None
        packet = mqtt.Publish(self.adapter.topic(channel), payload.encode(), qos, packet_id=packet_id)
        return packet_id, packet.encode(self.version)

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        packet_id = self._packet_id()
        self._subscribes[packet_id] = channel
        packet = mqtt.Subscribe(packet_id, (mqtt.Subscription(self.adapter.topic(channel), self.adapter.qos),))
        return packet_id, packet.encode(self.version)

    def goodbye(self) -> Sequence[Frame]:
        return (mqtt.Disconnect().encode(self.version),) if self.connected else ()


def _flag(value: Any, flag: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{flag} {value!r} must be true or false")


class MqttAdapter(Adapter):
    """MQTT 3.1.1 (or 5) over WebSocket, configured from the --mqtt-* options."""

    name = "mqtt"
    capabilities = frozenset({PUBLISH_ACK, SUBSCRIBE, HEARTBEAT})

    def __init__(self, settings: AdapterSettings | None = None) -> None:
        settings = settings or AdapterSettings()
        self.default_path = "/ws"  # RabbitMQ web-mqtt's; Mosquitto's is /mqtt (--ws-path)
        self.username = str(settings.get("mqtt_username", ""))
        self.password = str(settings.get("mqtt_password", ""))
        self.template = str(settings.get("mqtt_topic", DEFAULT_TOPIC))
        if "{channel}" not in self.template or "+" in self.template or "#" in self.template:
            raise ValueError(f"--mqtt-topic {self.template!r} must contain {{channel}} and no wildcard")
        self.prefix, _, self.suffix = self.template.partition("{channel}")
        try:
            self.qos = int(settings.get("mqtt_qos", 1))
        except (TypeError, ValueError):
            raise ValueError("--mqtt-qos must be 0 or 1") from None
        if self.qos not in (0, 1):
            raise ValueError(f"--mqtt-qos {self.qos} must be 0 or 1 (QoS 2 is not supported)")
        self.clean_start = _flag(settings.get("mqtt_clean_start", "true"), "--mqtt-clean-start")
        self.client_id = str(settings.get("mqtt_client_id", "{label}"))
        if not any(part in self.client_id for part in ("{label}", "{session}", "{identity}")):
            raise ValueError(f"--mqtt-client-id {self.client_id!r} must contain {{label}}, {{session}} or {{identity}}")
        version = str(settings.get("mqtt_version", "3.1.1")).strip()
        if version not in VERSIONS:
            raise ValueError(f"--mqtt-version {version!r} must be 3.1.1 or 5")
        self.version = VERSIONS[version]
        try:
            self.keepalive = int(settings.get("mqtt_keepalive", 30))
        except (TypeError, ValueError):
            raise ValueError("--mqtt-keepalive must be a whole number of seconds") from None
        if not 0 <= self.keepalive <= 0xFFFF:
            raise ValueError(f"--mqtt-keepalive {self.keepalive} must be 0..65535 seconds")
        resumes = not self.clean_start and "{label}" not in self.client_id
        self.capabilities = frozenset({SUBSCRIBE} | ({PUBLISH_ACK} if self.qos else set())
                                      | ({HEARTBEAT} if self.keepalive else set()) | ({RESUME} if resumes else set()))

    def topic(self, channel: str) -> str:
        return f"{self.prefix}{channel}{self.suffix}"

    def channel_of(self, topic: str) -> str | None:
        """The channel a topic is for (None: not one of ours; the stamp's channel is used)."""
        if topic.startswith(self.prefix) and topic.endswith(self.suffix) and len(topic) >= len(self.prefix) + len(
                self.suffix):
            return topic[len(self.prefix):len(topic) - len(self.suffix)] or None
        return None

    def session(self, context: SessionContext) -> MqttSession:
        return MqttSession(self, context)

    def fix_for(self, operation: str) -> str | None:
        if operation in ("subscribe", "publish"):
            return "--mqtt-topic (a topic template the broker accepts, e.g. socketproof/{channel}) and --mqtt-qos"
        return None


ADAPTER = MqttAdapter
