"""The Socket.IO adapter: Socket.IO v5 over Engine.IO v4, WebSocket transport only.

A sans-I/O session (frames in, events out) around python-socketio's and python-engineio's
own packet codecs, so the wire format is theirs, not ours. What it maps:

- the Engine.IO open packet (`0{"sid",...,"pingInterval","pingTimeout"}`) -> the
  namespace CONNECT (`40` + auth payload) as a Send; its ping interval and timeout
  become `Ready.heartbeat` (HEARTBEAT);
- the namespace's CONNECT answer -> `Ready`; CONNECT_ERROR -> `Failed` with the
  server's message; a first frame that is not Engine.IO -> `Failed` (`unexpected_frame`);
- an emit with an ack id (`42<id>[event, ...]`) and its ACK (`43<id>[...]`) -> a true
  round trip: `request("echo")` (ROUND_TRIP), `publish` (PUBLISH_ACK) and `subscribe`
  (the join event, SUBSCRIBE);
- the broadcast event (`--socketio-event`) -> `Delivery` with the room (the payload's
  `room` field when it has one) and the stamp found in the payload;
- Engine.IO ping (`2`) -> `KeepAlive` + `Send("3")`;
- binary attachments (BINARY_EVENT/BINARY_ACK) are not supported: a `Push` (or a
  failed Reply for an ack) that says so, and their attachment frames are skipped.

Connection state recovery (Socket.IO 4.6+ `pid` + `offset`) is not implemented: the
python-socketio server offers none, so RESUME is not declared (a `pid` the server
announces is kept in `Ready.extra`).
"""

from __future__ import annotations

import enum
import itertools
import json
from collections.abc import Sequence
from typing import Any

import engineio.packet as eio
import socketio.packet as sio

from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    ROUND_TRIP,
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
    Send,
    SessionContext,
    Stamp,
    UnsupportedOperation,
)
from client.adapters import AdapterOption, AdapterSettings
from client.errors import ProtocolError

OPTIONS = [
    AdapterOption("--socketio-path", "/socket.io/", "Socket.IO: the Engine.IO path on --host"),
    AdapterOption("--socketio-namespace", "/", "Socket.IO: the namespace to connect to"),
    AdapterOption("--socketio-event", "message",
                  "Socket.IO: the event a publish emits (with an ack, body {room, body}) and rooms broadcast"),
    AdapterOption("--socketio-join-event", "join", "Socket.IO: the event that joins a room (with an ack, arg: room)"),
    AdapterOption("--socketio-echo-event", "echo",
                  "Socket.IO: an event the server acks with its argument (round-trip latency); empty: none"),
    AdapterOption("--socketio-auth", "",
                  "Socket.IO: the CONNECT auth payload, a JSON object or a token; default {\"token\": <minted JWT>}"),
]

ENGINE_IO_QUERY = {"EIO": "4", "transport": "websocket"}


def _bounded_int(text: str) -> int:
    if len(text) > 100:  # as engineio.json: no huge integers from the wire
        raise ValueError("integer is too large")
    return int(text)


class _Json:
    """The codecs' JSON hook (`Packet.json`) with one prebuilt decoder and encoder: the
    default builds a new JSONDecoder per packet, a third of the decode time."""

    _decode = json.JSONDecoder(parse_int=_bounded_int).decode
    _encode = json.JSONEncoder(separators=(",", ":")).encode

    @classmethod
    def loads(cls, text: str) -> Any:
        return cls._decode(text)

    @classmethod
    def dumps(cls, data: Any, separators: Any = None) -> str:
        return cls._encode(data)


class _EngineIOPacket(eio.Packet):
    json = _Json


class _SocketIOPacket(sio.Packet):
    json = _Json
_SHOWN = 120
"""How much of an unreadable frame an error quotes."""


class State(enum.Enum):
    OPENING = "opening"  # upgraded, waiting for the Engine.IO open packet
    CONNECTING = "connecting"  # CONNECT sent, waiting for the namespace's answer
    READY = "ready"
    CLOSED = "closed"  # refused, disconnected or said goodbye


def _shown(frame: Frame) -> str:
    text = repr(frame[:_SHOWN])
    return text + ("..." if len(frame) > _SHOWN else "")


def _auth_payload(option: str) -> dict[str, Any] | None:
    """--socketio-auth: a JSON object as it is, anything else as `{"token": value}`."""
    option = option.strip()
    if not option:
        return None
    if option.startswith("{"):
        try:
            parsed = json.loads(option)
        except ValueError as error:
            raise ValueError(f"--socketio-auth is not a JSON object: {error}") from None
        if not isinstance(parsed, dict):
            raise ValueError("--socketio-auth is not a JSON object")
        return parsed
    return {"token": option}


class SocketIOSession(AdapterSession):
    """One connection's Socket.IO state machine (see the module docstring)."""

    def __init__(self, adapter: SocketIOAdapter, context: SessionContext) -> None:
        self.adapter = adapter
        self.context = context
        self.state = State.OPENING
        self.open_info: dict[str, Any] = {}
        self._ack_ids = itertools.count(1)
        self._skip_attachments = 0
        namespace = adapter.namespace
        self._namespace = namespace
        self._wire_namespace = None if namespace == "/" else namespace

    # -- what the client sends ---------------------------------------------------

    def handshake(self) -> Handshake:
        return Handshake(path=self.adapter.path, query=dict(ENGINE_IO_QUERY))

    def start(self) -> Sequence[Frame]:
        return ()  # the server speaks first (the open packet); CONNECT answers it

    def _encode(self, packet_type: int, data: Any = None, ack_id: int | None = None) -> str:
        packet = _SocketIOPacket(packet_type, data=data, namespace=self._wire_namespace, id=ack_id, binary=False)
        return _EngineIOPacket(eio.MESSAGE, data=packet.encode()).encode()

    def _emit(self, event: str, *args: Any) -> tuple[int, str]:
        ack_id = next(self._ack_ids)
        return ack_id, self._encode(sio.EVENT, [event, *args], ack_id)

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        """`echo` emits --socketio-echo-event; any other name is emitted as that event."""
        event = self.adapter.echo_event if name == "echo" else name
        if not event:
            raise UnsupportedOperation(self.adapter.name, "echo (--socketio-echo-event is empty)")
        return self._emit(event, body)

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        return self._emit(self.adapter.event, {"room": channel, "body": payload})

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        return self._emit(self.adapter.join_event, channel)

    def goodbye(self) -> Sequence[Frame]:
        if self.state is not State.READY:
            return ()
        self.state = State.CLOSED
        return (self._encode(sio.DISCONNECT),)

    def connect_frame(self) -> str:
        """The namespace CONNECT with the auth payload (`40{"token":...}`)."""
        auth = self.adapter.auth
        if auth is None and self.context.token is not None:
            auth = {"token": self.context.token}
        return self._encode(sio.CONNECT, auth)

    # -- what the server sends -----------------------------------------------------

    def receive(self, frame: Frame) -> Sequence[Event]:
        if isinstance(frame, (bytes, bytearray)):
            return self._binary(frame)
        try:
            packet = _EngineIOPacket(encoded_packet=frame)
        except Exception:  # the codec raises whatever the text provokes
            return self._unreadable(frame, "not an Engine.IO packet")
        kind = packet.packet_type
        if self.state is State.OPENING:
            return self._open(packet, frame)
        if kind == eio.MESSAGE:
            return self._message(packet.data, frame)
        if kind == eio.PING:
            return [KeepAlive(), Send("3" + (packet.data if isinstance(packet.data, str) else ""))]
        if kind == eio.CLOSE:
            return self._end("socketio_close", "the server closed the Engine.IO session")
        return [Push(frame, kind="engineio")]  # pong, noop, upgrade: nothing to do

    def _open(self, packet: eio.Packet, frame: str) -> list[Event]:
        data = packet.data
        if packet.packet_type != eio.OPEN or not isinstance(data, dict) or "sid" not in data:
            self.state = State.CLOSED
            return [Failed(ProtocolError(
                "unexpected_frame",
                f"not a Socket.IO server: expected an Engine.IO open packet (0{{\"sid\":...}}), got {_shown(frame)}"))]
        self.open_info = data
        self.state = State.CONNECTING
        return [Send(self.connect_frame())]

    def _message(self, text: Any, frame: str) -> list[Event]:
        if not isinstance(text, str):  # engineio parsed a JSON object: not a Socket.IO packet
            return self._unreadable(frame, "not a Socket.IO packet")
        try:
            packet = _SocketIOPacket(encoded_packet=text)
        except Exception:  # the codec raises whatever the text provokes
            return self._unreadable(frame, "not a Socket.IO packet")
        kind = packet.packet_type
        if kind in (sio.BINARY_EVENT, sio.BINARY_ACK):
            self._skip_attachments += packet.attachment_count  # binary frames that follow: not ours to read
        if (packet.namespace or "/") != self._namespace:
            return [Push(packet.data, kind="other_namespace")]
        if kind == sio.EVENT:
            return self._event(packet, frame)
        if kind == sio.ACK:
            return [self._reply(packet.id, packet.data)]
        if kind == sio.CONNECT:
            return self._connected(packet.data)
        if kind == sio.CONNECT_ERROR:
            message = packet.data.get("message", packet.data) if isinstance(packet.data, dict) else packet.data
            self.state = State.CLOSED
            return [Failed(ProtocolError(
                "connect_error", f"Socket.IO CONNECT_ERROR on namespace {self._namespace}: {message}",
                {"data": packet.data}))]
        if kind == sio.DISCONNECT:
            return self._end("socketio_disconnect", f"the server disconnected namespace {self._namespace}")
        if kind in (sio.BINARY_EVENT, sio.BINARY_ACK):
            error = ProtocolError("binary_unsupported",
                                  "Socket.IO binary attachments are not supported by the socketio adapter")
            if kind == sio.BINARY_ACK and packet.id is not None:
                return [Reply(packet.id, error=error)]
            return [Push(str(error), kind="binary_unsupported")]
        return self._unreadable(frame, "unknown Socket.IO packet type")

    def _connected(self, data: Any) -> list[Event]:
        if self.state is not State.CONNECTING:
            return [Push(data, kind="connect")]
        self.state = State.READY
        info = dict(self.open_info)
        heartbeat = None
        interval, timeout = info.get("pingInterval"), info.get("pingTimeout")
        if isinstance(interval, (int, float)) and isinstance(timeout, (int, float)):
            heartbeat = (interval / 1000.0, timeout / 1000.0)
        sid = data.get("sid") if isinstance(data, dict) else None
        extra = {"engineio_sid": info.get("sid")}
        if isinstance(data, dict) and "pid" in data:
            extra["pid"] = data["pid"]  # recovery offered, but not used (see the module docstring)
        return [Ready(info={"open": info, "connect": data}, conn_id=sid, heartbeat=heartbeat, extra=extra)]

    def _event(self, packet: sio.Packet, frame: str) -> list[Event]:
        data = packet.data
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return self._unreadable(frame, "an EVENT without an event name")
        events: list[Event] = []
        args = data[1:]
        if data[0] == self.adapter.event:
            body = args[0] if len(args) == 1 else args
            channel = body.get("room") if isinstance(body, dict) else None
            inner = body.get("body") if isinstance(body, dict) else body
            stamp = Stamp.find(inner) if isinstance(inner, str) else Stamp.find(frame)
            events.append(Delivery(channel=channel if isinstance(channel, str) else None, stamp=stamp, body=body))
        else:
            events.append(Push(data, kind="event"))
        if packet.id is not None:  # the server asked for an ack: give an empty one
            events.append(Send(self._encode(sio.ACK, [], packet.id)))
        return events

    def _reply(self, ack_id: int | None, data: Any) -> Reply:
        body = data[0] if isinstance(data, list) and len(data) == 1 else data
        if isinstance(body, dict) and isinstance(body.get("error"), str):  # the common `ack({error})` convention
            return Reply(ack_id, body, error=ProtocolError("ack_error", body["error"], body))
        return Reply(ack_id, body)

    def _binary(self, frame: bytes | bytearray) -> list[Event]:
        if self._skip_attachments > 0:
            self._skip_attachments -= 1
            return []
        if self.state is State.OPENING:
            return self._unreadable(bytes(frame), "expected an Engine.IO open packet, got a binary frame")
        return [Push(bytes(frame), kind="binary_unsupported")]

    def _unreadable(self, frame: Frame, why: str) -> list[Event]:
        if self.state is State.OPENING:
            self.state = State.CLOSED
            return [Failed(ProtocolError("unexpected_frame", f"not a Socket.IO server: {why}: {_shown(frame)}"))]
        return [Push(frame, kind="invalid")]

    def _end(self, code: str, message: str) -> list[Event]:
        was = self.state
        self.state = State.CLOSED
        if was is State.CLOSED:
            return []
        return [Failed(ProtocolError(code, message))]


class SocketIOAdapter(Adapter):
    """`--protocol socketio`: Socket.IO v5 / Engine.IO v4 over WebSocket."""

    name = "socketio"
    default_path = "/socket.io/?EIO=4&transport=websocket"
    capabilities = frozenset({ROUND_TRIP, PUBLISH_ACK, SUBSCRIBE, HEARTBEAT})

    def __init__(self, settings: AdapterSettings | None = None) -> None:
        settings = settings or AdapterSettings()
        self.path = str(settings.get("socketio_path", "/socket.io/"))
        if not self.path.startswith("/"):
            raise ValueError(f"--socketio-path must start with '/': {self.path!r}")
        self.namespace = str(settings.get("socketio_namespace", "/"))
        if not self.namespace.startswith("/") or "," in self.namespace:
            raise ValueError(f"--socketio-namespace must start with '/' and hold no ',': {self.namespace!r}")
        self.event = str(settings.get("socketio_event", "message"))
        self.join_event = str(settings.get("socketio_join_event", "join"))
        echo = settings.values.get("socketio_echo_event")
        self.echo_event = "echo" if echo is None else str(echo)
        self.auth = _auth_payload(str(settings.get("socketio_auth", "")))
        self.default_path = self.path + "?EIO=4&transport=websocket"
        caps = set(SocketIOAdapter.capabilities)
        if not self.echo_event:
            caps.discard(ROUND_TRIP)
        self.capabilities = frozenset(caps)

    def session(self, context: SessionContext) -> SocketIOSession:
        return SocketIOSession(self, context)

    def fix_for(self, operation: str) -> str | None:
        return _FIXES.get(operation)


_FIXES = {
    "echo": "--socketio-echo-event (the event your server answers with an ack; '' to measure with publishes instead)",
    "subscribe": "--socketio-join-event (the event your server joins a room on, with an ack; arg: the room)",
    "publish": "--socketio-event (the event your server acks and broadcasts to the room, body {room, body})",
}
"""The option behind each operation the pre-flight tries (client/adapter.py OPERATIONS)."""


ADAPTER = SocketIOAdapter
