"""STOMP 1.2 over WebSocket (subprotocols `v12.stomp`, `v11.stomp`): RabbitMQ web-stomp, ActiveMQ,
Spring's `@EnableWebSocketMessageBroker`; frames through client/adapters/stomp_frames.py.

How the protocol maps onto the seam:

- start-up: CONNECT with `accept-version:1.2,1.1`, `host` (--stomp-host, the virtual host),
  `login`/`passcode` (--stomp-login/--stomp-passcode; without a login the run's token is the
  passcode) and `heart-beat:N,N` (--stomp-heart-beat, default 10000 ms as stomp.js; 0: none).
  CONNECTED is `Ready`. An ERROR instead is `Failed` with the broker's words (`access_refused`
  for a refused login).
- heart-beats, negotiated from both headers (stomp_frames.negotiate_heart_beat): the client
  sends an end-of-line every negotiated client period on the session's clock (`tick`), or the
  broker closes it. The server's period is announced in `Ready.heartbeat` as a MAX_SILENCE
  (HEARTBEAT): in STOMP any data is a sign of life and a heart-beat is owed only after a whole
  silent period (RabbitMQ sends one only when it sent nothing since its last check: a busy
  connection gets none for seconds, an idle one gaps of up to two periods), so every inbound
  message is a `KeepAlive` and the heartbeat check judges the silences, not a steady interval.
- SUBSCRIBE (ack:auto) and SEND carry a `receipt`: the RECEIPT is the subscribe ack and the
  publish ack (PUBLISH_ACK). Destinations come from the run's channels through
  --stomp-destination (`/topic/{channel}`).
- MESSAGE is a `Delivery` on the channel its `subscription` was opened for, with the stamp
  found in the body and `message_id` its `message-id` header.
- ERROR after start-up: a `Reply` with the error when it names a receipt we wait for, else a
  `Push(kind="error")` coded by its `message` header. RabbitMQ 3.10 keeps the socket open
  after an ERROR (STOMP 1.2 says it SHOULD close).
- goodbye: DISCONNECT with a receipt (RabbitMQ may close before sending it).

No ROUND_TRIP: STOMP has no echo; flows measure with publishes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from client.adapter import (
    HEARTBEAT,
    MAX_SILENCE,
    PUBLISH_ACK,
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
    SessionContext,
    Stamp,
    UnsupportedOperation,
)
from client.adapters import AdapterOption, AdapterSettings
from client.adapters.stomp_frames import (
    Heartbeat,
    StompFrame,
    StompFrameError,
    decode,
    negotiate_heart_beat,
    parse_heart_beat,
)
from client.errors import SocketproofError

SUBPROTOCOLS = ("v12.stomp", "v11.stomp")
KNOWN_SUBPROTOCOLS = frozenset({"v12.stomp", "v11.stomp", "v10.stomp", "stomp"})
DEFAULT_DESTINATION = "/topic/{channel}"

OPTIONS = [
    AdapterOption("--stomp-login", "", "stomp: CONNECT's login (empty: none, and the run's token is the passcode)"),
    AdapterOption("--stomp-passcode", "",
                  "stomp: CONNECT's passcode (or $SOCKETPROOF_STOMP_PASSCODE; empty: the run's token)"),
    AdapterOption("--stomp-host", "/", "stomp: CONNECT's host header, the broker's virtual host"),
    AdapterOption("--stomp-destination", DEFAULT_DESTINATION,
                  "stomp: the destination of a channel; {channel} is replaced by the channel's name"),
    AdapterOption("--stomp-heart-beat", 10000,
                  "stomp: heart-beat period in ms, both ways (CONNECT heart-beat:N,N; 0: none): the client sends "
                  "an end-of-line every negotiated period, and the server's longest silence is judged (heartbeat)",
                  int),
]

CLOSE_RECEIPT = "socketproof-disconnect"


class StompError(SocketproofError):
    """An ERROR frame from the broker, or a frame the protocol does not allow; `code` names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_of(frame: StompFrame, *, connecting: bool) -> StompError:
    """The named error an ERROR frame is: `access_refused` for a refused login at start-up
    (RabbitMQ: message "Bad CONNECT", body "Access refused for user ..."), else `stomp_error`."""
    message = _one_line(frame.get("message") or "")
    body = _one_line(frame.text.rstrip("\x00"))
    said = f"{message!r}" + (f": {body!r}" if body and body != message else "")
    if connecting:
        refused = re.search(r"access refused|login|passcode|credential|authenticat|not allowed|denied",
                            f"{message} {body}", re.IGNORECASE)
        if refused:
            return StompError("access_refused", f"the broker refused CONNECT with ERROR {said} "
                                                "(check --stomp-login, --stomp-passcode and --stomp-host)")
        return StompError("connect_refused", f"the broker answered CONNECT with ERROR {said}")
    return StompError("stomp_error", f"ERROR {said}")


class StompSession(AdapterSession):
    """One connection's STOMP state: receipts in flight, subscriptions by id."""

    def __init__(self, adapter: StompAdapter, context: SessionContext) -> None:
        self.adapter = adapter
        self.context = context
        self.connected = False
        self._ids = itertools.count(1)
        self.subscriptions: dict[str, str] = {}
        """Subscription id -> the channel it was opened for."""
        self.beats_in = False
        """The server heart-beats (negotiated): every inbound message is a KeepAlive."""
        self.tick_interval: float | None = None
        """The client's negotiated heart-beat period in seconds (None: it sends none)."""

    def handshake(self) -> Handshake:
        return Handshake(path=self.adapter.default_path, subprotocols=SUBPROTOCOLS)

    def negotiated(self, subprotocol: str | None) -> Sequence[Event]:
        if subprotocol in (None, "") or subprotocol in KNOWN_SUBPROTOCOLS:
            return ()
        return (Failed(StompError("subprotocol", f"not supported: the server chose {subprotocol!r}; "
                                                 "it must accept v12.stomp or v11.stomp")),)

    def start(self) -> Sequence[Frame]:
        adapter = self.adapter
        headers: list[tuple[str, object]] = [("accept-version", "1.2,1.1"), ("host", adapter.host)]
        passcode = adapter.passcode or (self.context.token or "")
        if adapter.login:
            headers.append(("login", adapter.login))
        if adapter.login or passcode:
            headers.append(("passcode", passcode))
        headers.append(("heart-beat", f"{adapter.heart_beat},{adapter.heart_beat}"))
        return (StompFrame.make("CONNECT", headers).encode_text(),)

    def receive(self, frame: Frame) -> Sequence[Event]:
        try:
            items = decode(frame)
        except StompFrameError as error:
            return (Push({"frame": frame, "error": str(error)}, kind="invalid"),)
        events: list[Event] = [KeepAlive()] if self.beats_in else []  # any data is a sign of life
        for item in items:
            if isinstance(item, Heartbeat):
                if self.connected and not self.beats_in:
                    events.append(KeepAlive())
                continue
            events.extend(self._frame(item))
        return events

    def _frame(self, frame: StompFrame) -> Sequence[Event]:
        command = frame.command
        if command == "MESSAGE":
            channel = self.subscriptions.get(frame.get("subscription") or "")
            if channel is None:
                return (Push(frame, kind="stale"),)
            body = frame.text
            return (Delivery(channel, Stamp.find(body), body, message_id=frame.get("message-id")),)
        if command == "RECEIPT":
            receipt = frame.get("receipt-id")
            if receipt == CLOSE_RECEIPT:
                return (Push(frame, kind="receipt"),)
            return (Reply(receipt, body=None),)
        if command == "CONNECTED":
            return self._connected(frame)
        if command == "ERROR":
            if not self.connected:
                return (Failed(error_of(frame, connecting=True)),)
            error = error_of(frame, connecting=False)
            receipt = frame.get("receipt-id")
            if receipt is not None:
                return (Reply(receipt, body=frame.text, error=error),)
            return (Push(frame.text, kind="error", code=_one_line(frame.get("message") or "error", 60)),)
        return (Failed(StompError("unexpected_frame", f"a STOMP server does not send {command}")),)

    def _connected(self, frame: StompFrame) -> Sequence[Event]:
        if self.connected:
            return (Push(frame, kind="invalid"),)
        try:
            server = parse_heart_beat(frame.get("heart-beat"))
        except StompFrameError as error:
            return (Failed(StompError("unexpected_frame", str(error))),)
        self.connected = True
        beat = self.adapter.heart_beat
        to_server, from_server = negotiate_heart_beat((beat, beat), server)
        info = {**dict(frame.headers), "server_heart_beat_ms": from_server, "client_heart_beat_ms": to_server}
        self.tick_interval = to_server / 1000.0 if to_server else None
        self.beats_in = bool(from_server)
        heartbeat = (from_server / 1000.0, from_server / 1000.0) if from_server else None
        return (Ready(info=info, conn_id=frame.get("session"), heartbeat=heartbeat, heartbeat_kind=MAX_SILENCE),)

    def tick(self) -> Sequence[Frame]:
        """A heart-beat (an end-of-line) every negotiated period: the broker closes a client that
        promised them and went quiet. Sent whatever else went out (the spec allows it)."""
        return ("\n",) if self.connected and self.tick_interval else ()

    def _receipt(self) -> str:
        return f"r{next(self._ids)}"

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        raise UnsupportedOperation(self.adapter.name, name)

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        receipt = self._receipt()
        frame = StompFrame.make("SEND", [("destination", self.adapter.destination(channel)),
                                         ("content-type", "text/plain"), ("receipt", receipt)], payload)
        return receipt, frame.encode_text()

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        receipt = self._receipt()
        sub_id = f"s{receipt[1:]}"
        self.subscriptions[sub_id] = channel
        frame = StompFrame.make("SUBSCRIBE", [("id", sub_id), ("destination", self.adapter.destination(channel)),
                                              ("ack", "auto"), ("receipt", receipt)])
        return receipt, frame.encode_text()

    def unsubscribe(self, channel: str) -> Sequence[Frame]:
        ids = [sub_id for sub_id, joined in self.subscriptions.items() if joined == channel]
        for sub_id in ids:
            del self.subscriptions[sub_id]
        return [StompFrame.make("UNSUBSCRIBE", [("id", sub_id)]).encode_text() for sub_id in ids]

    def goodbye(self) -> Sequence[Frame]:
        if not self.connected:
            return ()
        return (StompFrame.make("DISCONNECT", [("receipt", CLOSE_RECEIPT)]).encode_text(),)


class StompAdapter(Adapter):
    """STOMP 1.2 over WebSocket, configured from the --stomp-* options."""

    name = "stomp"
    capabilities = frozenset({PUBLISH_ACK, SUBSCRIBE, HEARTBEAT})

    def __init__(self, settings: AdapterSettings | None = None) -> None:
        settings = settings or AdapterSettings()
        self.default_path = "/ws"  # RabbitMQ web-stomp's; --ws-path for another broker's
        self.login = str(settings.get("stomp_login", ""))
        self.passcode = str(settings.get("stomp_passcode", ""))
        self.host = str(settings.get("stomp_host", "/"))
        self.template = str(settings.get("stomp_destination", DEFAULT_DESTINATION))
        if "{channel}" not in self.template:
            raise ValueError(f"--stomp-destination {self.template!r} must contain {{channel}}")
        try:
            self.heart_beat = int(settings.get("stomp_heart_beat", 10000))
        except (TypeError, ValueError):
            raise ValueError("--stomp-heart-beat must be a whole number of milliseconds") from None
        if self.heart_beat < 0:
            raise ValueError(f"--stomp-heart-beat {self.heart_beat} must be >= 0")
        if not self.heart_beat:
            self.capabilities = frozenset({PUBLISH_ACK, SUBSCRIBE})

    def destination(self, channel: str) -> str:
        return self.template.replace("{channel}", channel)

    def session(self, context: SessionContext) -> StompSession:
        return StompSession(self, context)

    def fix_for(self, operation: str) -> str | None:
        if operation in ("subscribe", "publish"):
            return "--stomp-destination (a destination template the broker accepts, e.g. /topic/{channel})"
        return None


ADAPTER = StompAdapter
