"""The adapter seam: what one wire protocol tells the protocol-free client.

An adapter is sans-I/O, like `websockets`' Protocol: whole WebSocket messages (frames)
in, events out, and the frames to send. It owns no socket, no thread and no clock
beyond the times it is handed; `client/client.py` moves the frames (through
`client/transport.py`), waits for replies, fires Locust's request event and records
the history. One `Adapter` per run (built from the options); one `AdapterSession`
per connection.

What an adapter declares (`capabilities`) decides what the checks can judge: a check
that needs a capability the adapter lacks answers UNKNOWN with the reason, never PASS
and never FAIL (see docs/adapters.md, "What each check needs").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from client.errors import SocketproofError
from history.records import MAX_SILENCE as MAX_SILENCE  # re-exported: an adapter names its kind here
from history.records import STEADY

Frame = str | bytes
"""One whole WebSocket message: str is sent as a text frame, bytes as a binary frame."""

# -- capabilities ---------------------------------------------------------------

ROUND_TRIP = "round_trip"
"""`request("echo", ...)` is a side-effect-free round trip (latency without delivery)."""
PUBLISH_ACK = "publish_ack"
"""The server acknowledges each publish: loss is judged on acknowledged stamps only."""
SUBSCRIBE = "subscribe"
"""Channels are joined explicitly (rooms, subscriptions); without it a connection's
channels are the ones its session names in `Ready.channels` (e.g. its own user)."""
SERVER_SEQ = "server_seq"
"""Deliveries carry the server's own per-channel sequence number (`Delivery.seq`)."""
RESUME = "resume"
"""A reconnect resumes from an offset and the server replays what was missed."""
VERSIONED_STATE = "versioned_state"
"""A state document with versions (`StateChange` events): the state check and flow."""
SERVER_STATS = "server_stats"
"""The server's own /stats endpoint gives its connection count (cleanup) with an admin token."""
BOUND_CHANNEL = "bound_channel"
"""A connection's channel is fixed by its handshake (the room in the URL: the Django Channels
tutorial's `/ws/chat/<room>/`, FastAPI's `/ws/{client_id}`). The flow chooses the channel before
connecting (`SessionContext.channel`), the session puts it in its handshake and names it in
`Ready.channels`; the connection receives that channel only and publishes only to it, and
nothing is subscribed. A receiver is then owed exactly what was published to its channel
while it was connected."""
HEARTBEAT = "heartbeat"
"""The protocol announces its heartbeat interval (`Ready.heartbeat`): the heartbeat check
judges the server's pings against it. Without it, WebSocket ping frames are still recorded."""

# `Ready.heartbeat_kind` (history/records.py): STEADY, the server pings at the announced interval
# (the reference protocol, Engine.IO, graphql-ws, MQTT's PINGRESP to the client's paced PINGREQ);
# MAX_SILENCE, the interval is the longest the server stays silent (STOMP: a heart-beat is owed only
# after a silent period, any frame is a sign of life): the session then reports a `KeepAlive` for
# every inbound message.
ALL_CAPABILITIES = frozenset(
    {ROUND_TRIP, PUBLISH_ACK, SUBSCRIBE, SERVER_SEQ, RESUME, VERSIONED_STATE, SERVER_STATS, HEARTBEAT, BOUND_CHANNEL}
)

OPERATIONS = ("echo", "subscribe", "publish")
"""What a flow does on its connections that the pre-flight tries once before any user starts
(a flow's `uses`): `request("echo")` (ROUND_TRIP), `subscribe` (SUBSCRIBE), and a publish that
comes back to a subscriber. `Adapter.fix_for` names the option that fixes a missing one."""


# -- stamps -------------------------------------------------------------------------

_STAMP_RE = re.compile(r"sp1\|([^|\s]{1,200})\|([^|\s]{0,200})\|(\d{1,18})\|(\d{1,12}\.\d{1,9})\|")


@dataclasses.dataclass(frozen=True, slots=True)
class Stamp:
    """What a Locust user puts inside every payload it publishes.

    `sender` is the publishing connection's label (unique in the run, process included),
    `counter` counts that sender's publishes to `channel` from 1 with no gaps, and
    `sent_at` is `time.time()` at publish. The checks judge ordering, duplicates and
    loss from stamps alone, so any protocol that carries a string can be judged.
    """

    sender: str
    channel: str
    counter: int
    sent_at: float

    def encode(self) -> str:
        """`sp1|sender|channel|counter|sent_at|`: one token, findable inside any text."""
        return f"sp1|{self.sender}|{self.channel}|{self.counter}|{self.sent_at:.6f}|"

    @classmethod
    def find(cls, text: Any) -> Stamp | None:
        """The first stamp inside `text` (a str, or bytes as UTF-8); None when there is none."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", errors="replace")
        elif not isinstance(text, str):
            return None
        match = _STAMP_RE.search(text)
        if match is None:
            return None
        sender, channel, counter, sent_at = match.groups()
        return cls(sender, channel, int(counter), float(sent_at))

    @staticmethod
    def safe(name: str) -> str:
        """`name` with what would break a stamp (`|`, white space) replaced by `_`."""
        return re.sub(r"[|\s]", "_", name)


def stamped_payload(stamp: Stamp, size: int) -> str:
    """The stamp padded with `x` to `size` characters (never shorter than the stamp)."""
    text = stamp.encode()
    return text + "x" * max(0, size - len(text))


# -- what a session tells the client ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Handshake:
    """How to open a connection: appended to the run's --host.

    `path` may carry a query string (e.g. Socket.IO's `/socket.io/?EIO=4&transport=websocket`);
    `query` adds parameters; `subprotocols` are offered in Sec-WebSocket-Protocol.
    """

    path: str
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    subprotocols: tuple[str, ...] = ()


@dataclasses.dataclass(slots=True)
class ResumeInfo:
    """What a resumed connection was told (RESUME adapters): the offset asked for, the
    server's current offset, how many messages it replays, and any announced gap."""

    requested: int | None = None
    server_last: int | None = None
    replay: int = 0
    resumed: bool | None = None
    gap: tuple[int, int | None] | None = None


@dataclasses.dataclass(slots=True)
class Ready:
    """Start-up is complete: the connection can be used.

    `info` is what the server said (welcome, open packet, connection_ack payload),
    `conn_id` the server's id for the connection if it has one, `channels` the channels
    the connection receives without subscribing (e.g. its own user id), `heartbeat`
    the announced (interval, timeout) in seconds and `heartbeat_kind` how it is kept
    (STEADY or MAX_SILENCE), `resume` for RESUME adapters, and `replayed` the deliveries
    that were part of the start-up (they are also reported as Delivery events, before Ready).
    """

    info: Any = None
    conn_id: Any = None
    channels: tuple[str, ...] = ()
    heartbeat: tuple[float, float] | None = None
    resume: ResumeInfo | None = None
    replayed: list[Any] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    heartbeat_kind: str = STEADY


@dataclasses.dataclass(slots=True)
class Reply:
    """The answer to the request or publish or subscribe whose correlation key is `corr`.
    `error` set: the server refused it (the request fails with it). `seq` is the server's
    sequence number of an acknowledged publish (SERVER_SEQ adapters)."""

    corr: Any
    body: Any = None
    error: SocketproofError | None = None
    seq: int | None = None


@dataclasses.dataclass(slots=True)
class Delivery:
    """A published message arriving on `channel` (None: the adapter cannot tell; the
    stamp's channel is used). `seq` is the server's own number (SERVER_SEQ), `replay`
    marks a message replayed at start-up (RESUME)."""

    channel: str | None
    stamp: Stamp | None
    body: Any = None
    seq: int | None = None
    replay: bool = False
    message_id: Any = None


@dataclasses.dataclass(slots=True)
class KeepAlive:
    """A protocol-level heartbeat from the server (e.g. Engine.IO ping, graphql-ws ping).
    Its answer, if any, comes as a Send event. WebSocket ping frames never reach the
    adapter: the transport answers and records those itself."""


@dataclasses.dataclass(slots=True)
class Send:
    """A frame the session wants sent now (a pong, an ack the server asked for)."""

    frame: Frame


@dataclasses.dataclass(slots=True)
class StateChange:
    """A change of the versioned state document (VERSIONED_STATE adapters).
    kind: "snapshot" (whole `state`), "patch" (someone's `patch`), "ack" (our own update
    with `corr`, applied at `version`)."""

    kind: str
    version: Any
    state: Any = None
    patch: Any = None
    corr: Any = None


@dataclasses.dataclass(slots=True)
class Push:
    """Any other frame: kept for a test or a flow to read (an error without a request,
    a server notice). `kind` names it for the history's counts (bounded)."""

    body: Any
    kind: str = "push"
    code: str | None = None
    """An error code the server gave (recorded by code, bounded), if this push is an error."""


@dataclasses.dataclass(slots=True)
class Failed:
    """The session cannot go on: start-up refused (Socket.IO CONNECT_ERROR, graphql-ws 4403,
    a welcome that is not one) or a fatal protocol violation. The client closes the
    connection and raises `error` to whoever waits."""

    error: SocketproofError


Event = Ready | Reply | Delivery | KeepAlive | Send | StateChange | Push | Failed


@dataclasses.dataclass(frozen=True, slots=True)
class SessionContext:
    """What a session is opened for: the identity it acts as, its token (None: the
    adapter needs none), the connection's label (stamps' sender), and for RESUME
    adapters the offset to resume after (None: a fresh start). `channel` is the channel a
    BOUND_CHANNEL connection is opened for (None for other adapters)."""

    identity: str
    label: str
    token: str | None = None
    resume_after: Any = None
    channel: str | None = None


class UnsupportedOperation(SocketproofError):
    """The adapter has no such operation (e.g. publish on a protocol without one)."""

    def __init__(self, adapter: str, operation: str) -> None:
        super().__init__(adapter, operation)
        self.adapter = adapter
        self.operation = operation

    def __str__(self) -> str:
        return f"unsupported: the {self.adapter} adapter has no {self.operation!r} operation"


class AdapterSession:
    """One connection's protocol state machine: frames in, events out. Inherit it.

    Required (the base raises NotImplementedError): `handshake`, `receive`, `request`,
    `publish`, `subscribe`; an operation the protocol lacks raises UnsupportedOperation.
    Everything else has a default here that suits a protocol that needs nothing more:
    override only what yours says. The client calls every method directly.

    Encoding methods return `(corr, frame)`: `corr` is the correlation key the matching
    Reply will carry (None: nothing will answer; the operation is done once sent).
    Sessions choose their own keys (a request id, a Socket.IO ack id, an operation id).
    """

    __slots__ = ()  # a subclass may keep __slots__: a Locust process holds thousands of idle sessions

    start_timeout: float | None = None
    """Seconds the start-up may take (e.g. graphql-ws's connection_ack timeout); None: the
    client's own timeout. A class attribute, an instance attribute or a property."""

    tick_interval: float | None = None
    """Seconds between `tick()` calls once Ready (None or 0: never): the one clock a session gets,
    for a protocol whose client must speak on its own (MQTT's PINGREQ, STOMP's heart-beats).
    Read once, when the connection is ready."""

    # -- required --------------------------------------------------------------------

    def handshake(self) -> Handshake:
        """Path, query, headers and subprotocols of the upgrade request."""
        raise NotImplementedError(f"{type(self).__name__}.handshake")

    def receive(self, frame: Frame) -> Sequence[Event]:
        """Classify one inbound message. Must not raise on bad input: a frame it cannot
        read is a `Push(kind="invalid")`, or `Failed` when the protocol must end."""
        raise NotImplementedError(f"{type(self).__name__}.receive")

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        """A request/reply operation (`echo` for ROUND_TRIP adapters; others by name)."""
        raise NotImplementedError(f"{type(self).__name__}.request")

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        """Publish `payload` (which contains `stamp.encode()`) to `channel`."""
        raise NotImplementedError(f"{type(self).__name__}.publish")

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        """Join `channel` (SUBSCRIBE adapters); implicit channels need no call."""
        raise NotImplementedError(f"{type(self).__name__}.subscribe")

    # -- optional: the defaults ---------------------------------------------------------

    def start(self) -> Sequence[Frame]:
        """Frames to send right after the upgrade. Default: none (the server speaks first)."""
        return ()

    def goodbye(self) -> Sequence[Frame]:
        """Frames to send before a clean close (Socket.IO DISCONNECT). Default: none."""
        return ()

    def ready_without_greeting(self) -> Ready | None:
        """Asked once `start()` was sent: a protocol whose server says nothing first is ready
        now (return Ready). Default None: wait for a `Ready` from `receive()`."""
        return None

    def negotiated(self, subprotocol: str | None) -> Sequence[Event] | SocketproofError | None:
        """The server's choice of subprotocol (None: it chose none), before `start()`: a
        `Failed` among the events (or an error) refuses the connection. Default: accept."""
        return None

    def tick(self) -> Sequence[Frame]:
        """Frames to send every `tick_interval` seconds while open (a keep-alive). Default: none.
        Called from the receive side's loop: it must not wait."""
        return ()

    def start_timed_out(self) -> SocketproofError | None:
        """What connect() raises when start-up took longer than `start_timeout`. Default None:
        a Timeout naming the protocol."""
        return None

    def closed(self, code: int | None, reason: str) -> SocketproofError | None:
        """The connection ended with close `code`: an error naming it (graphql-ws 4403 ->
        "forbidden") is raised to whoever waits, start-up included. Default None: a plain
        ConnectionClosed."""
        return None


class Adapter:
    """One wire protocol, configured for a run. Inherit it.

    Required: `name` (what --protocol takes, shown in verdicts), `default_path` (appended
    to --host unless --ws-path says otherwise), `capabilities` (what the checks may rely
    on) and `session()`. A user's adapter declares `name` and `capabilities` on the class
    (--protocol checks them before building it); `default_path` may be set in `__init__`.
    """

    name: str
    default_path: str
    capabilities: frozenset[str]

    def __init__(self, settings: Any = None) -> None:
        """Built once per run with `settings` (client/adapters AdapterSettings: the adapter's
        own options by dest, the message size). Default: an adapter with no options."""

    def session(self, context: SessionContext) -> AdapterSession:
        """A new session for one connection."""
        raise NotImplementedError(f"{type(self).__name__}.session")

    def fix_for(self, operation: str) -> str | None:
        """The option that fixes `operation` (one of OPERATIONS) when the server does not do it
        (e.g. "--socketio-echo-event (...)"): the pre-flight's line names it. Default None: the
        adapter has no option for it, and the line asks whether the server speaks the protocol."""
        return None


# -- adapters written before the base classes ---------------------------------------

_SESSION_METHODS = ("handshake", "receive", "request", "publish", "subscribe", "start", "goodbye",
                    "ready_without_greeting", "negotiated", "start_timed_out", "closed", "tick")


class LegacySession(AdapterSession):
    """A session whose class does not inherit AdapterSession (written from the older docs,
    duck-typed): its own methods where it has them, the base's defaults where it has not.
    Looked up once, here, so the client calls every method directly; other attributes read
    through to the session (`inner`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        for name in _SESSION_METHODS:
            method = getattr(inner, name, None)
            if method is not None:
                self.__dict__[name] = method  # an instance attribute: called with no extra hop

    @property
    def start_timeout(self) -> float | None:  # type: ignore[override]
        return getattr(self.inner, "start_timeout", None)

    @property
    def tick_interval(self) -> float | None:  # type: ignore[override]
        return getattr(self.inner, "tick_interval", None)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<LegacySession {self.inner!r}>"


def as_session(session: Any) -> AdapterSession:
    """`session` itself when it inherits AdapterSession, else a LegacySession around it."""
    return session if isinstance(session, AdapterSession) else LegacySession(session)


def as_adapter_class(cls: type) -> type[Adapter]:
    """`cls` itself when it inherits Adapter, else a subclass of it and Adapter (same name,
    same attributes and methods, the base's defaults where it has none)."""
    if issubclass(cls, Adapter):
        return cls
    return type(cls.__name__, (cls, Adapter), {"__module__": cls.__module__, "__doc__": cls.__doc__,
                                               "__qualname__": cls.__qualname__})
