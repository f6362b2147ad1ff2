"""A notification feed on Starlette (uvicorn): the BACKEND publishes, clients only listen.

Subscribing, as ticker and notification services do it (Binance's combined streams, most
notification hubs): name the channels in the URL, `ws://HOST:PORT/ws/feed?channels=a,b`, and
the connection is subscribed from its first frame; or, on the open socket, send
`{"op": "subscribe", "channels": ["c"]}` / `{"op": "unsubscribe", ...}`. Each subscription is
confirmed with `{"op": "subscribed", "channels": [...all of the connection's...]}` (the one for
the URL's channels is the connection's first frame) before any message of it. `{"op": "ping"}`
answers `{"op": "pong"}`; anything else `{"op": "error", "reason": ...}`. Channel names are 1 to
64 of `A-Z a-z 0-9 _ . : -`; at most 100 per connection.

Every message is `{"channel": C, "id": "<boot>-<n>", "seq": <per-channel counter from 1>, "data": D}`:
`id` is unique per message (`boot` is random per server start), `seq` counts the channel's
messages, whoever published them. Every subscriber of a channel gets its messages in one
order. A background task publishes `{"tick": seq, "at": unix time}` on each of `--channels`
channels every `--interval` seconds, and `POST /api/notify` with `{"channel": C, "data": D}`
(`Authorization: Bearer T` when `--api-token T`) publishes D at once and answers
`{"channel", "id", "seq", "subscribers"}`, so a load tool can drive the backend over HTTP
(D may carry a stamp) while it listens on WebSockets. A subscriber that falls 10,000 messages
behind is closed with 1013. `GET /metrics` is Prometheus text: `feed_connections`,
`feed_subscriptions`, `feed_published_total`, `feed_faults_total{kind=...}`.

Test switches, each one bug: `--drop-for-one N` drops every Nth message to ONE subscriber (the
oldest open connection) only; `--duplicate-every N` sends every Nth message of each connection
twice.

Run: `python -m apps.feed_app [--port 0] [--interval 0.1] [--channels 3|a,b,c] [--api-token T]`;
it prints `feed app listening on http://127.0.0.1:PORT` once it listens. `running_app()` runs it
as a child process for a test and stops it, checking nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import json
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from apps.app_child import AppHandle, running_child

READY_MARK = "feed app listening on "
CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_CHANNELS_PER_CONNECTION = 100
QUEUE_LIMIT = 10_000
NOTIFY_MAX_BYTES = 64 * 1024


# -- the core: pure, no socket, no clock ---------------------------------------------------


class BadChannels(ValueError):
    """A subscription the feed refuses (its text says why)."""


def parse_channels(value: Any) -> list[str]:
    """Channel names from `a,b` (the URL) or `["a", "b"]` (a subscribe message), deduplicated in order."""
    if isinstance(value, str):
        names = [name.strip() for name in value.split(",") if name.strip()]
    elif isinstance(value, list):
        names = value
    else:
        raise BadChannels("channels must be a comma-separated string or a list of names")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not CHANNEL_RE.fullmatch(name):
            raise BadChannels(f"bad channel name {str(name)[:70]!r}: 1 to 64 of A-Z a-z 0-9 _ . : -")
        if name not in out:
            out.append(name)
    return out


@dataclasses.dataclass
class Subscriber:
    """One connection: its channels and how many messages it was sent (the faults count these)."""

    channels: set[str] = dataclasses.field(default_factory=set)
    sent: int = 0


class Feed:
    """Who is subscribed to what, the per-channel seqs, and the faults. `publish` returns what
    to send to whom; the transport only moves the frames."""

    def __init__(self, drop_for_one: int = 0, duplicate_every: int = 0, boot: str | None = None) -> None:
        self.drop_for_one = drop_for_one
        self.duplicate_every = duplicate_every
        self.boot = boot or secrets.token_hex(4)
        self.subscribers: dict[int, Subscriber] = {}  # insertion order: oldest connection first
        self.by_channel: dict[str, dict[int, None]] = {}  # channel -> subscribers, in subscription order
        self.seqs: dict[str, int] = {}
        self.published = 0
        self.faults = {"drop": 0, "duplicate": 0}
        self._next_conn = 0

    def connect(self) -> int:
        self._next_conn += 1
        self.subscribers[self._next_conn] = Subscriber()
        return self._next_conn

    def disconnect(self, conn: int) -> None:
        sub = self.subscribers.pop(conn, None)
        for channel in sub.channels if sub is not None else ():
            self._leave(conn, channel)

    def subscribe(self, conn: int, channels: list[str]) -> list[str]:
        """Add `channels`; returns all of the connection's channels (sorted). Raises BadChannels."""
        sub = self.subscribers[conn]
        if len(sub.channels | set(channels)) > MAX_CHANNELS_PER_CONNECTION:
            raise BadChannels(f"at most {MAX_CHANNELS_PER_CONNECTION} channels per connection")
        for channel in channels:
            if channel not in sub.channels:
                sub.channels.add(channel)
                self.by_channel.setdefault(channel, {})[conn] = None
        return sorted(sub.channels)

    def unsubscribe(self, conn: int, channels: list[str]) -> list[str]:
        sub = self.subscribers[conn]
        for channel in channels:
            if channel in sub.channels:
                sub.channels.discard(channel)
                self._leave(conn, channel)
        return sorted(sub.channels)

    def _leave(self, conn: int, channel: str) -> None:
        members = self.by_channel.get(channel)
        if members is not None:
            members.pop(conn, None)
            if not members:
                del self.by_channel[channel]

    def victim(self) -> int | None:
        """The one subscriber `--drop-for-one` drops from: the oldest open connection."""
        return next(iter(self.subscribers), None)

    def publish(self, channel: str, data: Any) -> tuple[dict[str, Any], list[tuple[int, str]]]:
        """The message, and (connection, frame) pairs to send, in order, faults applied."""
        seq = self.seqs[channel] = self.seqs.get(channel, 0) + 1
        self.published += 1
        message = {"channel": channel, "id": f"{self.boot}-{self.published}", "seq": seq, "data": data}
        frame = json.dumps(message, separators=(",", ":"))
        victim = self.victim() if self.drop_for_one else None
        out: list[tuple[int, str]] = []
        for conn in self.by_channel.get(channel, ()):
            sub = self.subscribers[conn]
            sub.sent += 1
            if conn == victim and sub.sent % self.drop_for_one == 0:
                self.faults["drop"] += 1
                continue
            out.append((conn, frame))
            if self.duplicate_every and sub.sent % self.duplicate_every == 0:
                self.faults["duplicate"] += 1
                out.append((conn, frame))
        return message, out

    def metrics(self) -> str:
        subscriptions = sum(len(sub.channels) for sub in self.subscribers.values())
        return (
            "# TYPE feed_connections gauge\n"
            f"feed_connections {len(self.subscribers)}\n"
            "# TYPE feed_subscriptions gauge\n"
            f"feed_subscriptions {subscriptions}\n"
            "# TYPE feed_published_total counter\n"
            f"feed_published_total {self.published}\n"
            "# TYPE feed_faults_total counter\n"
            + "".join(f'feed_faults_total{{kind="{kind}"}} {n}\n' for kind, n in self.faults.items())
        )


# -- the transport: Starlette ---------------------------------------------------------------

CLOSE = object()
"""Queued instead of a frame: the subscriber fell too far behind; close it."""


def timer_channels(spec: str) -> list[str]:
    """`--channels`: a count (`3`: feed-0, feed-1, feed-2) or names (`a,b,c`)."""
    spec = spec.strip()
    if spec.isdigit():
        return [f"feed-{i}" for i in range(int(spec))]
    return parse_channels(spec)


def create_app(feed: Feed, channels: list[str], interval: float, api_token: str | None) -> Any:
    """The Starlette app: the WebSocket feed, the notify API, /metrics, and the timer publisher."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    queues: dict[int, asyncio.Queue[Any]] = {}

    def send_out(pairs: list[tuple[int, str]]) -> None:
        for conn, frame in pairs:
            queue = queues.get(conn)
            if queue is None:
                continue
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # too slow: drop its backlog, close it, forget it
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(CLOSE)
                queues.pop(conn, None)
                feed.disconnect(conn)

    def publish(channel: str, data: Any) -> tuple[dict[str, Any], int]:
        subscribers = len(feed.by_channel.get(channel, ()))
        message, pairs = feed.publish(channel, data)
        send_out(pairs)
        return message, subscribers

    async def write(websocket: WebSocket, queue: asyncio.Queue[Any]) -> None:
        with contextlib.suppress(Exception):  # the client went away: the reader sees it
            while True:
                frame = await queue.get()
                if frame is CLOSE:
                    await websocket.close(1013, "subscriber too slow")
                    return
                await websocket.send_text(frame)

    def control(conn: int, text: str) -> str:
        """The answer to one client frame."""
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            msg = None
        op = msg.get("op") if isinstance(msg, dict) else None
        try:
            if op == "subscribe":
                return json.dumps({"op": "subscribed", "channels": feed.subscribe(conn, parse_channels(
                    msg.get("channels")))})
            if op == "unsubscribe":
                return json.dumps({"op": "unsubscribed", "channels": feed.unsubscribe(conn, parse_channels(
                    msg.get("channels")))})
        except BadChannels as error:
            return json.dumps({"op": "error", "reason": str(error)})
        if op == "ping":
            return json.dumps({"op": "pong"})
        return json.dumps({"op": "error", "reason": "expected {\"op\": \"subscribe\"|\"unsubscribe\"|\"ping\"}"})

    async def feed_socket(websocket: WebSocket) -> None:
        try:
            wanted = parse_channels(websocket.query_params.get("channels", ""))
            if len(wanted) > MAX_CHANNELS_PER_CONNECTION:
                raise BadChannels(f"at most {MAX_CHANNELS_PER_CONNECTION} channels per connection")
        except BadChannels:
            await websocket.close(1008)  # before accept: the upgrade is refused (HTTP 403)
            return
        await websocket.accept()
        conn = feed.connect()
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_LIMIT)
        queues[conn] = queue
        if wanted:  # the confirmation first, then (no await between) the subscription
            queue.put_nowait(json.dumps({"op": "subscribed", "channels": sorted(wanted)}))
            feed.subscribe(conn, wanted)
        writer = asyncio.create_task(write(websocket, queue))
        try:
            while True:
                event = await websocket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                answer = control(conn, text) if text is not None else json.dumps(
                    {"op": "error", "reason": "binary frames are not understood"})
                send_out([(conn, answer)])
        except Exception:  # noqa: BLE001 - one bad client never takes the server down
            pass
        finally:
            queues.pop(conn, None)
            feed.disconnect(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def notify(request: Request) -> Response:
        if api_token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_token}".encode()):
                return JSONResponse({"error": "unauthorized"}, 401, headers={"WWW-Authenticate": "Bearer"})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > NOTIFY_MAX_BYTES:
                return JSONResponse({"error": f"body over {NOTIFY_MAX_BYTES} bytes"}, 413)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "body is not JSON"}, 400)
        channel = payload.get("channel") if isinstance(payload, dict) else None
        if not isinstance(channel, str) or not CHANNEL_RE.fullmatch(channel) or "data" not in payload:
            return JSONResponse({"error": "expected {\"channel\": name, \"data\": ...}"}, 400)
        message, subscribers = publish(channel, payload["data"])
        return JSONResponse({"channel": channel, "id": message["id"], "seq": message["seq"],
                             "subscribers": subscribers})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(feed.metrics(), headers={"Content-Type": "text/plain; version=0.0.4"})

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            for channel in channels:
                publish(channel, {"tick": feed.seqs.get(channel, 0) + 1, "at": round(time.time(), 6)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(ticker()) if interval > 0 and channels else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return Starlette(
        routes=[
            WebSocketRoute("/ws/feed", feed_socket),
            Route("/api/notify", notify, methods=["POST"]),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.feed_app", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0: one from the OS)")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="seconds between the backend's publishes on each channel (default 0.1; 0: none)")
    parser.add_argument("--channels", default="3",
                        help="the backend's channels: a count (3: feed-0..feed-2) or names (a,b,c); default 3")
    parser.add_argument("--api-token", default=None,
                        help="POST /api/notify needs `Authorization: Bearer TOKEN` (or $FEED_API_TOKEN)")
    parser.add_argument("--drop-for-one", type=int, default=0, metavar="N",
                        help="test switch: drop every Nth message to one subscriber (the oldest connection)")
    parser.add_argument("--duplicate-every", type=int, default=0, metavar="N",
                        help="test switch: send every Nth message of each connection twice")
    args = parser.parse_args(argv)
    try:
        channels = timer_channels(args.channels)
    except BadChannels as error:
        parser.error(f"--channels: {error}")
    if args.interval < 0 or args.drop_for_one < 0 or args.duplicate_every < 0:
        parser.error("--interval, --drop-for-one and --duplicate-every cannot be negative")

    import uvicorn

    feed = Feed(args.drop_for_one, args.duplicate_every)
    app = create_app(feed, channels, args.interval, args.api_token or os.environ.get("FEED_API_TOKEN"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, ws="wsproto", log_level="warning", lifespan="on", timeout_graceful_shutdown=3,
                            ws_max_size=1024 * 1024)
    print(f"{READY_MARK}http://{host}:{port}", flush=True)
    # uvicorn re-raises SIGTERM to the previous handler once it has shut down: make that a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


# -- for tests -------------------------------------------------------------------------------


@dataclasses.dataclass
class FeedHandle(AppHandle):
    """A running feed (app_child.AppHandle) and the token its HTTP API wants, if any."""

    api_token: str | None = None

    def feed_url(self, *channels: str) -> str:
        base = self.ws_url + "/ws/feed"
        return base + "?channels=" + ",".join(channels) if channels else base

    def notify(self, channel: str, data: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST /api/notify (with this app's token unless `token` is given): (status, JSON answer)."""
        import urllib.error

        token = self.api_token if token is None else token
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + "/api/notify", json.dumps({"channel": channel, "data": data})
                                         .encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        self.wait_metric("feed_connections", count, timeout)


@contextlib.contextmanager
def running_app(*, api_token: str | None = None, start_timeout: float = 20.0,
                **switches: float | str) -> Iterator[FeedHandle]:
    """Start the feed on a free loopback port; stop it after and check it is gone.

    `switches` are the command-line options by their dest (`interval=0.05`, `drop_for_one=5`, ...).
    """
    command = [sys.executable, "-m", "apps.feed_app", "--port", "0"]
    if api_token is not None:
        command += ["--api-token", api_token]
    for name, value in switches.items():
        command += ["--" + name.replace("_", "-"), str(value)]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SOCKETPROOF_") and key != "FEED_API_TOKEN"}
    with running_child("feed app", command, READY_MARK, env, start_timeout) as (child, url):
        assert child.process is not None
        handle = FeedHandle(url, child.process, child.output, api_token)
        handle.metrics()  # answers, not only listens
        yield handle


if __name__ == "__main__":
    sys.exit(main())
