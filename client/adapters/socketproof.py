"""The `socketproof` adapter: docs/protocol.md, the reference server's protocol.

Start-up is welcome, snapshot, then `replay` messages; requests carry an `id` that
every reply echoes; `send` to a user is a publish acknowledged with the user's `seq`;
deliveries are `message` frames with the server's per-user `seq`; a resume asks for
`?last_seq=N`; the state document has versions. It has every capability.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from json.encoder import c_make_encoder, encode_basestring
from json.scanner import make_scanner
from types import MappingProxyType
from typing import Any

from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    RESUME,
    ROUND_TRIP,
    SERVER_SEQ,
    SERVER_STATS,
    VERSIONED_STATE,
    Adapter,
    AdapterSession,
    Delivery,
    Failed,
    Frame,
    Handshake,
    Push,
    Ready,
    Reply,
    ResumeInfo,
    SessionContext,
    Stamp,
    StateChange,
)
from client.adapters import AdapterOption, AdapterSettings
from client.errors import ProtocolError

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_encode = (
    c_make_encoder(None, _encoder.default, encode_basestring, None, ":", ",", False, False, True)
    if c_make_encoder is not None
    else None
)
_scan = make_scanner(json.JSONDecoder())


def dumps(msg: Any) -> str:
    """Compact JSON without JSONEncoder.iterencode's per-call setup (the per-request path)."""
    if _encode is None:
        return _encoder.encode(msg)
    try:
        return "".join(_encode(msg, 0))
    except RecursionError:  # circular: let the stdlib say so, with its ValueError
        return _encoder.encode(msg)


def loads(text: str) -> Any:
    """`json.loads(text)`, with a fast path for the usual `{...}` frame."""
    try:
        if text[:1] == "{":
            obj, end = _scan(text, 0)
            if end == len(text):
                return obj
    except (ValueError, StopIteration):
        pass
    return json.loads(text)


def invalid(frame: Frame) -> dict[str, Any]:
    """What a frame that is not a JSON object becomes (tests read it as a push)."""
    binary = isinstance(frame, bytes)
    raw = frame.decode("utf-8", errors="replace") if binary else frame
    return {"type": "_invalid", "binary": binary, "raw": raw}


_PUSH_ONLY = frozenset({"message", "patch"})  # their `id` is the sender's, never a reply
_UNKEYED = (list, dict)
"""JSON ids that cannot be a correlation key (unhashable): a hostile `"id": [1]` is a push, not a reply."""
_WELCOME, _SNAPSHOT, _REPLAY, _OPEN = range(4)

OPTIONS: list[AdapterOption] = []
"""No options of its own: --ws-path, --jwt-secret and --jwt-audience are the run's."""


_FORGOTTEN: Any = MappingProxyType({})
"""What the session keeps of the welcome and snapshot once Ready carries them."""
_NO_REPLAY: Any = ()

class SocketproofAdapter(Adapter):
    """docs/protocol.md. `settings.values["ws_path"]` overrides the default `/ws`."""

    name = "socketproof"
    capabilities = frozenset({ROUND_TRIP, PUBLISH_ACK, SERVER_SEQ, RESUME, VERSIONED_STATE, SERVER_STATS, HEARTBEAT})

    def __init__(self, settings: AdapterSettings | None = None) -> None:
        settings = settings or AdapterSettings()
        self.default_path = str(settings.get("ws_path", "/ws"))

    def session(self, context: SessionContext) -> SocketproofSession:
        return SocketproofSession(self.default_path, context)


class SocketproofSession(AdapterSession):
    """One connection's start-up phase and frame classification (no I/O)."""

    __slots__ = ("_path", "_context", "_phase", "_welcome", "_snapshot", "_replayed", "_expected",
                 "_prefix", "_ids", "_user")

    def __init__(self, path: str, context: SessionContext) -> None:
        self._path = path
        self._context = context
        self._phase = _WELCOME
        # Start-up frames until Ready takes them; the id source on the first request (an idle
        # connection in a Locust process holding thousands needs neither).
        self._welcome: dict[str, Any] = {}
        self._snapshot: dict[str, Any] = {}
        self._replayed: list[dict[str, Any]] = _NO_REPLAY  # type: ignore[assignment]
        self._expected = 0
        self._prefix = ""
        self._ids: Iterator[int] | None = None
        self._user = context.identity

    # -- opening ---------------------------------------------------------------------

    def handshake(self) -> Handshake:
        query = {}
        if self._context.resume_after is not None:
            query["last_seq"] = str(self._context.resume_after)
        headers = {"Authorization": f"Bearer {self._context.token}"} if self._context.token else {}
        return Handshake(self._path, query, headers)

    def start(self) -> list[Frame]:
        return []  # the server speaks first

    def goodbye(self) -> list[Frame]:
        return []

    def next_id(self) -> str:
        """A request id unique to this session (random prefix + counter)."""
        ids = self._ids
        if ids is None:
            self._prefix = secrets.token_hex(4) + "-"
            ids = self._ids = itertools.count(1)
        return f"{self._prefix}{next(ids)}"

    # -- outbound --------------------------------------------------------------------

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        """`name` is the message type; `body` its other fields (a dict), or echo's data."""
        if isinstance(body, dict):
            msg = {"type": name, **body}
        elif name == "echo":
            msg = {"type": "echo", "data": body}
        else:
            msg = {"type": name}
        mid = msg.get("id")
        if mid is None:
            mid = msg["id"] = self.next_id()
        return mid, dumps(msg)

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        """Send to user `channel`; the ack (with the user's seq) is the publish's reply."""
        mid = f"{stamp.sender}:{stamp.channel}:{stamp.counter}"
        return mid, dumps({"type": "send", "id": mid, "to": channel, "data": payload})

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        from client.adapter import UnsupportedOperation

        raise UnsupportedOperation(SocketproofAdapter.name, "subscribe (a connection receives its own user)")

    # -- inbound ---------------------------------------------------------------------

    def receive(self, frame: Frame) -> list[Any]:
        if frame.__class__ is not str:
            return [Push(invalid(frame), "invalid")]
        try:
            msg = loads(frame)  # type: ignore[arg-type]
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." from a hostile server
            msg = None
        if msg.__class__ is not dict:
            return [Push(invalid(frame), "invalid")]
        if self._phase == _OPEN:
            return self._live(msg)
        return self._starting(msg)

    def _live(self, msg: dict[str, Any]) -> list[Any]:
        kind = msg.get("type")
        if kind == "message":
            seq = msg.get("seq")
            return [Delivery(self._user, Stamp.find(msg.get("data")), msg,
                             seq if seq.__class__ is int else None, False, msg.get("id"))]
        if kind == "patch":
            return [StateChange("patch", msg.get("version"), patch=msg.get("patch")), Push(msg, "patch")]
        mid = msg.get("id")
        if mid is not None and kind not in _PUSH_ONLY and mid.__class__ not in _UNKEYED:
            if kind == "error":
                return [Reply(mid, msg, ProtocolError.from_frame(msg))]
            if kind == "ack":
                if "version" in msg:
                    return [StateChange("ack", msg.get("version"), corr=mid), Reply(mid, msg)]
                seq = msg.get("seq")
                return [Reply(mid, msg, None, seq if seq.__class__ is int else None)]
            if kind == "snapshot":
                return [StateChange("snapshot", msg.get("version"), state=msg.get("state")), Reply(mid, msg)]
            return [Reply(mid, msg)]
        if kind == "error":
            return [Push(msg, "error", str(msg.get("code")))]
        return [Push(msg, str(kind)[:40])]

    def _starting(self, msg: dict[str, Any]) -> list[Any]:
        kind = msg.get("type")
        if self._phase == _WELCOME:
            if kind != "welcome":
                return [Failed(self._unexpected("welcome", msg))]
            self._welcome = msg
            user = msg.get("user")
            if isinstance(user, str) and user:
                self._user = user
            self._phase = _SNAPSHOT
            return []
        if self._phase == _SNAPSHOT:
            if kind != "snapshot":
                return [Failed(self._unexpected("snapshot", msg))]
            self._snapshot = msg
            replay = self._welcome.get("replay")
            self._expected = replay if isinstance(replay, int) and replay > 0 else 0
            state = StateChange("snapshot", msg.get("version"), state=msg.get("state"))
            if self._expected:
                self._phase = _REPLAY
                self._replayed = []
                return [state]
            return [state, self._ready()]
        # replay
        if kind != "message":
            return [Push(msg, str(kind)[:40])]  # not part of the replay, but nothing is dropped
        self._replayed.append(msg)
        seq = msg.get("seq")
        delivery = Delivery(self._user, Stamp.find(msg.get("data")), msg,
                            seq if seq.__class__ is int else None, True, msg.get("id"))
        if len(self._replayed) < self._expected:
            return [delivery]
        return [delivery, self._ready()]

    def _ready(self) -> Ready:
        self._phase = _OPEN
        welcome = self._welcome
        heartbeat = welcome.get("heartbeat")
        beat = None
        if isinstance(heartbeat, dict):
            interval, timeout = heartbeat.get("interval"), heartbeat.get("timeout")
            if isinstance(interval, (int, float)) and isinstance(timeout, (int, float)):
                beat = (float(interval), float(timeout))
        gap = welcome.get("gap")
        last = welcome.get("last_seq")
        replay = welcome.get("replay")
        resume = ResumeInfo(
            requested=self._context.resume_after,
            server_last=last if isinstance(last, int) else None,
            replay=replay if isinstance(replay, int) else 0,
            resumed=welcome.get("resumed"),
            gap=(gap.get("from"), gap.get("to")) if isinstance(gap, dict) else None,
        )
        ready = Ready(welcome, welcome.get("conn_id"), (self._user,), beat, resume, list(self._replayed),
                      {"snapshot": self._snapshot})
        self._welcome = self._snapshot = _FORGOTTEN  # Ready has them; the session needs none
        self._replayed = _NO_REPLAY  # type: ignore[assignment]
        return ready

    @staticmethod
    def _unexpected(wanted: str, msg: dict[str, Any]) -> ProtocolError:
        if msg.get("type") == "error":
            return ProtocolError.from_frame(msg)
        return ProtocolError("unexpected_frame", f"expected {wanted}, got {msg.get('type')!r}", msg)


ADAPTER = SocketproofAdapter
