"""The Django Channels tutorial chat as a Socketproof adapter: a service that puts the room in the URL.

The protocol (apps/channels_chat speaks it; it is the Channels tutorial's ChatConsumer):
  connect to /ws/chat/<room>/      the connection is in <room> for its whole life (`\\w+` names only)
  client -> {"message": M}          every connection of the room, sender included -> {"message": M}
The server says nothing first, acknowledges nothing, has no echo and no join message, and its
messages carry no room name. So the adapter declares BOUND_CHANNEL: the run chooses each
connection's room before it connects (`SessionContext.channel`, one of --rooms), the session
puts it in the handshake path and names it on every Delivery and in Ready.channels, and the
flows publish only to that room. daphne pings with WebSocket ping frames every 20 s, which the
client answers and records by itself.

The tutorial's AllowedHostsOriginValidator refuses an upgrade without an allowed Origin (403):
pass `--origin http://HOST:PORT`.

Run it:  locust --headless --protocol docs/examples/channels_chat_adapter.py:ChannelsChatAdapter \\
             --host ws://host:port --origin http://host:port
"""

from __future__ import annotations

import json
from typing import Any

from client.adapter import (
    BOUND_CHANNEL,
    Adapter,
    AdapterSession,
    Delivery,
    Frame,
    Handshake,
    Push,
    Ready,
    SessionContext,
    Stamp,
    UnsupportedOperation,
)


def url_name(channel: str) -> str:
    """The run's room names (`room-0`) as the tutorial's URL pattern takes them (`\\w+`: no `-`)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in channel)


class ChannelsChatAdapter(Adapter):
    """What the run needs to know: a name, the path, what the protocol can tell the checks."""

    name = "channels-chat"
    default_path = "/ws/chat/"  # each session's handshake names its room under it
    capabilities: frozenset[str] = frozenset({BOUND_CHANNEL})
    # No ROUND_TRIP (no echo), no SUBSCRIBE (the room is joined by the URL, not by a message),
    # no PUBLISH_ACK (group_send answers nothing): loss is judged on what was published.

    def session(self, context: SessionContext) -> ChannelsChatSession:
        return ChannelsChatSession(context)


class ChannelsChatSession(AdapterSession):
    """One connection, in one room: frames in, events out. No socket, no thread, no clock."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.room = context.channel or context.identity  # the run always names one (BOUND_CHANNEL)

    def handshake(self) -> Handshake:
        return Handshake(f"{ChannelsChatAdapter.default_path}{url_name(self.room)}/")  # the tutorial has no auth

    def ready_without_greeting(self) -> Ready:
        # The server says nothing first; the connection receives its handshake's room.
        return Ready(conn_id=self.context.label, channels=(self.room,))

    # -- what the client sends: (correlation key, frame) ---------------------------------

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        raise UnsupportedOperation(ChannelsChatAdapter.name, name)  # the tutorial has no request/reply

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        # BOUND_CHANNEL: the run publishes only to this connection's room. None: no ack.
        return None, json.dumps({"message": payload})

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        raise UnsupportedOperation(ChannelsChatAdapter.name, "subscribe")  # the room is in the URL

    # -- what the server sends: events --------------------------------------------------

    def receive(self, frame: Frame) -> list[Any]:
        try:
            msg = json.loads(frame)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            msg = None
        if not isinstance(msg, dict) or "message" not in msg:
            return [Push({"raw": frame}, "invalid")]
        message = msg["message"]
        return [Delivery(self.room, Stamp.find(message if isinstance(message, str) else json.dumps(message)), msg)]
