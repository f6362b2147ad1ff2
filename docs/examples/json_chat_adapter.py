"""A custom JSON chat protocol as a Socketproof adapter: the worked example of docs/adapters.md.

The protocol (apps/json_chat_server.py speaks it):
  client -> {"op": "join", "room": R}                 server -> {"op": "joined", "room": R}
  client -> {"op": "publish", "room": R, "body": B}   every member of R -> {"op": "message", "room": R, "body": B}
  client -> {"op": "echo", "ref": N, "body": B}       server -> {"op": "echo", "ref": N, "body": B}
  server -> {"op": "error", "reason": T}              (a refusal; with "ref" when it answers a request)
The server says nothing first and acknowledges no publish. It pings with WebSocket ping
frames, which the client answers and records by itself: the heartbeat check needs nothing here.

Run it:  locust --headless --protocol docs/examples/json_chat_adapter.py:JsonChatAdapter --host ws://host:port
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from client.adapter import (
    ROUND_TRIP,
    SUBSCRIBE,
    Adapter,
    AdapterSession,
    Delivery,
    Frame,
    Handshake,
    Push,
    Ready,
    Reply,
    SessionContext,
    Stamp,
)
from client.errors import ProtocolError


class JsonChatAdapter(Adapter):
    """What the run needs to know: a name, the path, what the protocol can tell the checks."""

    name = "json-chat"
    default_path = "/chat"
    capabilities = frozenset({ROUND_TRIP, SUBSCRIBE})
    # No PUBLISH_ACK: loss is judged on what was published. No SERVER_SEQ, RESUME or
    # VERSIONED_STATE: the checks that need them say UNKNOWN, with this reason.

    # No __init__: the base's takes the run's settings, and this adapter has no options of its own.

    def session(self, context: SessionContext) -> JsonChatSession:
        return JsonChatSession(context)


class JsonChatSession(AdapterSession):
    """One connection: frames in, events out. No socket, no thread, no clock. The base
    (client/adapter.py) supplies what this protocol does not need: no start-up frames
    (`start`), no goodbye, no subprotocol, no named close codes."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context
        self.refs = itertools.count(1)

    def handshake(self) -> Handshake:
        headers = {"Authorization": f"Bearer {self.context.token}"} if self.context.token else {}
        return Handshake(JsonChatAdapter.default_path, headers=headers)

    def ready_without_greeting(self) -> Ready:
        return Ready(conn_id=self.context.label)  # the server says nothing first

    # -- what the client sends: (correlation key, frame) ---------------------------------

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        ref = next(self.refs)
        return ref, json.dumps({"op": name, "ref": ref, "body": body})

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        return None, json.dumps({"op": "publish", "room": channel, "body": payload})  # None: no ack

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        return ("joined", channel), json.dumps({"op": "join", "room": channel})

    # -- what the server sends: events --------------------------------------------------

    def receive(self, frame: Frame) -> list[Any]:
        try:
            msg = json.loads(frame)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            msg = None
        if not isinstance(msg, dict):
            return [Push({"raw": frame}, "invalid")]
        op = msg.get("op")
        if op == "message":
            return [Delivery(msg.get("room"), Stamp.find(msg.get("body")), msg)]
        if op == "joined":
            return [Reply(("joined", msg.get("room")), msg)]
        if op == "echo":
            return [Reply(msg.get("ref"), msg)]
        if op == "error":
            error = ProtocolError("refused", str(msg.get("reason")), msg)
            if "ref" in msg:
                return [Reply(msg["ref"], msg, error)]
            return [Push(msg, "error", "refused")]
        return [Push(msg, str(op)[:40])]
