"""The Django Channels tutorial chat as a Socketproof adapter: a service that puts the room in the URL.

The protocol (apps/channels_chat speaks it; it is the Channels tutorial's ChatConsumer):
  connect to /ws/chat/<room>/      the connection is in <room> for its whole life (`\\w+` names only)
  client -> {"message": M}          every connection of the room, sender included -> {"message": M}
The server says nothing first, acknowledges nothing, has no echo and no join message, and its
messages carry no room name: a connection's room is the one in its handshake path, so this
session remembers it and names it on every Delivery and in Ready.channels. daphne pings with
WebSocket ping frames every 20 s, which the client answers and records by itself.

The tutorial's AllowedHostsOriginValidator refuses an upgrade without an allowed Origin (403):
pass `--origin http://HOST:PORT`.

Run it:  locust --headless --protocol docs/examples/channels_chat_adapter.py:ChannelsChatAdapter \\
             --host ws://host:port --origin http://host:port

What this adapter cannot say (docs/adapters.md has no words for it): the room is fixed by the
handshake, so `publish(channel, ...)` can only ever reach this connection's own room, whatever
`channel` the flow asked for, and there is no `subscribe` to join another one.
"""

from __future__ import annotations

import json
from typing import Any

from client.adapter import Delivery, Frame, Handshake, Push, Ready, SessionContext, Stamp, UnsupportedOperation

ROOMS = 5
"""Connections spread over room_0..room_4 by identity (the tutorial's URL pattern takes no `-`)."""


def room_of(identity: str) -> str:
    """The room an identity's connections join: the same one on every reconnect and every tab."""
    return f"room_{sum(identity.encode()) % ROOMS}"


class ChannelsChatAdapter:
    """What the run needs to know: a name, the path, what the protocol can tell the checks."""

    name = "channels-chat"
    default_path = "/ws/chat/"  # each session's handshake names its room under it
    capabilities: frozenset[str] = frozenset()
    # No ROUND_TRIP (no echo), no SUBSCRIBE (the room is joined by the URL, not by a message),
    # no PUBLISH_ACK (group_send answers nothing): loss is judged on what was published.

    def __init__(self, settings: Any = None) -> None:
        pass  # no options of its own

    def session(self, context: SessionContext) -> ChannelsChatSession:
        return ChannelsChatSession(context)


class ChannelsChatSession:
    """One connection, in one room: frames in, events out. No socket, no thread, no clock."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.room = room_of(context.identity)

    def handshake(self) -> Handshake:
        return Handshake(f"{ChannelsChatAdapter.default_path}{self.room}/")  # the tutorial has no auth

    def start(self) -> list[Frame]:
        return []

    def ready_without_greeting(self) -> Ready:
        # The server says nothing first; the connection receives its handshake's room.
        return Ready(conn_id=self.context.label, channels=(self.room,))

    def goodbye(self) -> list[Frame]:
        return []

    # -- what the client sends: (correlation key, frame) ---------------------------------

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        raise UnsupportedOperation(ChannelsChatAdapter.name, name)  # the tutorial has no request/reply

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        # The message goes to this connection's room, the only one it can reach; `channel` cannot
        # be put anywhere in the frame. None: no ack.
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
