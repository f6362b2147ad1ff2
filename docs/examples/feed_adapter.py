"""A listen-only notification feed as a Socketproof adapter: messages the BACKEND publishes.

The protocol (apps/feed_app.py speaks it; ticker and notification services look like this):
  connect to /ws/feed?channels=a,b            subscribed to a and b from the first frame on
  server -> {"op": "subscribed", "channels": [...]}   the URL's channels, first; then one per subscribe
  client -> {"op": "subscribe", "channels": [C]}      server -> {"op": "subscribed", "channels": [all]}
  client -> {"op": "ping"}                            server -> {"op": "pong"}
  server -> {"channel": C, "id": I, "seq": N, "data": D}   a message, `id` unique per message
  server -> {"op": "error", "reason": T}              the answer to a frame it refused
The server answers each client frame with exactly one frame, in order, so answers are matched
to requests first in, first out. Clients do not publish: the backend does (a timer, an HTTP API).

Every message is a Delivery whose `message_id` is the feed's `id`: with nobody in the run
publishing there is no stamp, and the subscriber agreement check compares the subscribers of
each channel by these ids (missed, duplicated, reordered). A message that does carry a stamp
(the run published it through the backend's HTTP API) is judged by loss, ordering and
duplicates instead. The feed's `seq` is not passed on: this adapter claims no SERVER_SEQ, to
show that agreement needs nothing but an id (a feed whose per-channel seqs are gapless could
claim SERVER_SEQ and set `Delivery.seq` too). Without an id at all, leave `message_id` None:
the client then knows each message by a hash of its body.

Channels: the URL's, from `FEED_CHANNELS` (default `feed-0`) or `FeedAdapter(channels=...)`; a
flow may `subscribe()` to more. A 101 answer means the URL's channels are subscribed (the feed
refuses a bad name before the upgrade), so the connection is ready without waiting for the
confirmation frame: a fault proxy that drops frames cannot stall the start-up.

Run it:  FEED_CHANNELS=feed-0,feed-1 locust --headless \\
             --protocol docs/examples/feed_adapter.py:FeedAdapter --host ws://host:port
"""

from __future__ import annotations

import collections
import itertools
import json
import os
from collections.abc import Iterable
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
    UnsupportedOperation,
)
from client.errors import ProtocolError

DEFAULT_CHANNELS = "feed-0"


class FeedAdapter(Adapter):
    """What the run needs to know: a name, the path, what the protocol can tell the checks."""

    name = "feed"
    default_path = "/ws/feed"
    capabilities = frozenset({ROUND_TRIP, SUBSCRIBE})
    # ROUND_TRIP: `request("echo")` is the feed's ping/pong. SUBSCRIBE: channels are joined by
    # message too. No PUBLISH_ACK (clients do not publish), no SERVER_SEQ (see the module docstring).

    def __init__(self, settings: Any = None, channels: Iterable[str] | None = None) -> None:
        if channels is None:
            channels = os.environ.get("FEED_CHANNELS", DEFAULT_CHANNELS).split(",")
        self.channels = tuple(c.strip() for c in channels if c.strip())

    def session(self, context: SessionContext) -> FeedSession:
        return FeedSession(context, self.channels)


class FeedSession(AdapterSession):
    """One connection: frames in, events out. No socket, no thread, no clock."""

    def __init__(self, context: SessionContext, channels: tuple[str, ...]) -> None:
        self.context = context
        self.channels = channels
        self.url_confirmed = not channels  # the URL's confirmation is the first frame, unasked
        self.waiting: collections.deque[Any] = collections.deque()  # answers owed, in order
        self.pings = itertools.count(1)

    def handshake(self) -> Handshake:
        query = {"channels": ",".join(self.channels)} if self.channels else {}
        return Handshake(FeedAdapter.default_path, query=query)

    def ready_without_greeting(self) -> Ready:
        return Ready(conn_id=self.context.label, channels=self.channels)  # subscribed once upgraded

    # -- what the client sends: (correlation key, frame) ---------------------------------

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        if name not in ("echo", "ping"):
            raise UnsupportedOperation(FeedAdapter.name, name)
        corr = ("pong", next(self.pings))
        self.waiting.append(corr)
        return corr, json.dumps({"op": "ping"})

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        raise UnsupportedOperation(FeedAdapter.name, "publish")  # the backend publishes, not clients

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        corr = ("subscribed", channel)
        self.waiting.append(corr)
        return corr, json.dumps({"op": "subscribe", "channels": [channel]})

    # -- what the server sends: events --------------------------------------------------

    def receive(self, frame: Frame) -> list[Any]:
        try:
            msg = json.loads(frame)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            msg = None
        if not isinstance(msg, dict):
            return [Push({"raw": frame}, "invalid")]
        op = msg.get("op")
        if op is None and "channel" in msg:
            channel = msg["channel"]
            return [Delivery(channel if isinstance(channel, str) else None, Stamp.find(frame), msg,
                             message_id=msg.get("id"))]
        if op == "subscribed" and not self.url_confirmed and msg.get("channels") == sorted(self.channels):
            self.url_confirmed = True
            return []  # the URL's subscription, already taken as done at the upgrade
        if op in ("subscribed", "pong", "error") and self.waiting:
            corr = self.waiting.popleft()
            if op == "error":
                return [Reply(corr, msg, ProtocolError("refused", str(msg.get("reason")), msg))]
            return [Reply(corr, msg)]
        if op == "error":
            return [Push(msg, "error", "refused")]
        return [Push(msg, str(op)[:40])]
