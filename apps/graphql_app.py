"""A real GraphQL chat service (strawberry-graphql on uvicorn) for the graphql-ws adapter's tests.

The schema is the conventional chat one the adapter's defaults expect:

    type Query        { echo(message: String!): String! }
    type Mutation     { sendMessage(room: String!, body: String!): Message! }
    type Subscription { messages(room: String!): Message! }

`connection_init` must carry `{"token": <HS256 JWT signed with --jwt-secret>}` (else the
socket is closed with 4403). `GET /metrics` is Prometheus text with the open WebSocket
connections (`graphql_connections`) and active subscriptions (`graphql_subscriptions`).
Test switches: --drop-every and --duplicate-every (every Nth event of each subscription),
--reorder-every (every Nth publish is held back until the same connection's next one to that
room, so every subscriber sees one sender's messages out of order); --protocols graphql-ws
makes a legacy-only server.

Run: `python -m apps.graphql_app --jwt-secret S` (port 0 by default); it prints
`graphql-app listening on http://127.0.0.1:PORT` once the socket listens. `running_app()`
starts it as a child process for a test and stops it, checking nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import jwt
import strawberry
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import ParserCache, ValidationCache

from apps import app_child
from apps.app_child import running_child

ROOT = Path(__file__).resolve().parents[1]
READY_MARK = "graphql-app listening on "
DEFAULT_SECRET = "graphql-test-secret-of-at-least-32-bytes"
METRIC_CONNECTIONS = "graphql_connections"
METRIC_SUBSCRIPTIONS = "graphql_subscriptions"


# -- the faults: pure, one per switch ------------------------------------------------------


@dataclasses.dataclass
class EventFaults:
    """Per-subscription fault filter: every Nth event is dropped or sent twice. `done` counts
    what it did (for /metrics)."""

    drop_every: int = 0
    duplicate_every: int = 0
    seen: int = 0
    done: dict[str, int] = dataclasses.field(default_factory=lambda: {"dropped": 0, "duplicated": 0})

    def feed(self, event: Any) -> list[Any]:
        """What the subscriber gets for `event`, in order."""
        self.seen += 1
        n = self.seen
        if self.drop_every and n % self.drop_every == 0:
            self.done["dropped"] += 1
            return []
        out = [event]
        if self.duplicate_every and n % self.duplicate_every == 0:
            out.append(event)
            self.done["duplicated"] += 1
        return out


# -- the app --------------------------------------------------------------------------------


@dataclasses.dataclass
class AppConfig:
    jwt_secret: str
    drop_every: int = 0
    duplicate_every: int = 0
    reorder_every: int = 0
    protocols: tuple[str, ...] = ("graphql-transport-ws", "graphql-ws")


class Rooms:
    """Who listens to which room; publishing puts the message on every listener's queue."""

    def __init__(self, reorder_every: int = 0) -> None:
        self.listeners: dict[str, set[asyncio.Queue[Any]]] = {}
        self.connections = 0
        self.subscriptions = 0
        self.faults = {"dropped": 0, "duplicated": 0, "reordered": 0}
        self.reorder_every = reorder_every
        self.published = 0
        self.held: dict[tuple[str, int], Any] = {}  # (room, publishing connection) -> held message

    def publish(self, room: str, message: Any, publisher: int) -> None:
        """Put `message` on every listener's queue; with --reorder-every, every Nth publish
        goes out after the same publisher's next one to the room (the publisher's order, which
        every subscriber can check, is broken; holding per room and publisher, not per
        subscription, makes each held message a reorder that one sender's stamps show)."""
        self.published += 1
        key = (room, publisher)
        if self.reorder_every and self.published % self.reorder_every == 0 and key not in self.held:
            self.held[key] = message
            return
        self._deliver(room, message)
        held = self.held.pop(key, None)
        if held is not None:
            self._deliver(room, held)
            self.faults["reordered"] += 1

    def _deliver(self, room: str, message: Any) -> None:
        for queue in self.listeners.get(room, ()):
            queue.put_nowait(message)

    def metrics(self) -> str:
        lines = [
            f"# TYPE {METRIC_CONNECTIONS} gauge", f"{METRIC_CONNECTIONS} {self.connections}",
            f"# TYPE {METRIC_SUBSCRIPTIONS} gauge", f"{METRIC_SUBSCRIPTIONS} {self.subscriptions}",
            "# TYPE graphql_fault_events_total counter",
        ]
        lines += [f'graphql_fault_events_total{{fault="{name}"}} {count}' for name, count in self.faults.items()]
        return "\n".join(lines) + "\n"


@strawberry.type
class Message:
    room: str
    body: str


@strawberry.type
class Query:
    @strawberry.field
    def echo(self, message: str) -> str:
        return message


@strawberry.type
class Mutation:
    @strawberry.mutation
    def send_message(self, info: strawberry.Info, room: str, body: str) -> Message:
        message = Message(room=room, body=body)
        info.context["rooms"].publish(room, message, publisher=id(info.context["request"]))
        return message


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def messages(self, info: strawberry.Info, room: str) -> AsyncGenerator[Message, None]:
        rooms: Rooms = info.context["rooms"]
        config: AppConfig = info.context["config"]
        queue: asyncio.Queue[Any] = asyncio.Queue()
        faults = EventFaults(config.drop_every, config.duplicate_every)
        rooms.listeners.setdefault(room, set()).add(queue)
        rooms.subscriptions += 1
        try:
            while True:
                event = await queue.get()
                before = dict(faults.done)
                for out in faults.feed(event):
                    yield out
                for name, count in faults.done.items():
                    rooms.faults[name] += count - before[name]
        finally:
            rooms.subscriptions -= 1
            rooms.listeners[room].discard(queue)


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription,
                           extensions=[lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)])
"""The caches keep the app's own CPU per operation low, so a load run measures the client."""


class ChatGraphQL(GraphQL):
    """Strawberry's ASGI view with the room registry in every context and JWT auth in
    connection_init (a bad or missing token: strawberry closes with 4403)."""

    def __init__(self, config: AppConfig, rooms: Rooms) -> None:
        super().__init__(SCHEMA, graphql_ide=None, subscription_protocols=config.protocols)
        self.config = config
        self.rooms = rooms

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return {"request": request, "response": response, "rooms": self.rooms, "config": self.config}

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        params = context.get("connection_params") or {}
        try:
            jwt.decode(str(params.get("token", "")), self.config.jwt_secret, algorithms=["HS256"],
                       options={"verify_aud": False})
        except jwt.PyJWTError as error:
            raise ConnectionRejectionError({"message": str(error)}) from None
        return await super().on_ws_connect(context)


def create_app(config: AppConfig) -> Any:
    """The ASGI app: /graphql (HTTP and WebSocket) and /metrics."""
    rooms = Rooms(config.reorder_every)
    graphql = ChatGraphQL(config, rooms)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/metrics":
            body = rooms.metrics().encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; version=0.0.4")]})
            await send({"type": "http.response.body", "body": body})
            return
        if path != "/graphql" or scope["type"] not in ("http", "websocket"):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        if scope["type"] != "websocket":
            await graphql(scope, receive, send)
            return
        rooms.connections += 1
        try:
            await graphql(scope, receive, send)
        finally:
            rooms.connections -= 1

    app.rooms = rooms  # type: ignore[attr-defined]
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m apps.graphql_app", description=__doc__.split("\n")[0])
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--duplicate-every", type=int, default=0)
    parser.add_argument("--reorder-every", type=int, default=0)
    parser.add_argument("--protocols", default="graphql-transport-ws,graphql-ws")
    args = parser.parse_args(argv)
    config = AppConfig(args.jwt_secret, args.drop_every, args.duplicate_every, args.reorder_every,
                       tuple(name for name in args.protocols.split(",") if name))
    app = create_app(config)  # a broken app fails here, before the ready line
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)  # connections wait in the backlog until uvicorn accepts them
    print(f"{READY_MARK}http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, ws="wsproto", lifespan="off", log_level="warning",
                                           timeout_graceful_shutdown=2, ws_ping_interval=None))
    # uvicorn re-raises the SIGTERM it caught once it has shut down; a no-op handler
    # makes that a clean exit 0, so a test can tell a clean stop from a crash
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[sock])
    return 0


# -- for tests: run it as a child process ---------------------------------------------------


@dataclasses.dataclass
class AppHandle(app_child.AppHandle):
    """A running GraphQL app (app_child.AppHandle) and the secret its tokens are signed with."""

    secret: str = ""

    @property
    def ws_url(self) -> str:
        return "ws://" + self.url[len("http://"):] + "/graphql"

    def fault_counts(self) -> dict[str, float]:
        """What the fault switches did so far: {"dropped": n, "duplicated": n, "reordered": n}."""
        prefix = "graphql_fault_events_total{"
        return {name.split('"')[1]: value for name, value in self.metrics().items() if name.startswith(prefix)}

    def wait_metrics(self, timeout: float = 5.0, **expected: float) -> dict[str, float]:
        """Poll /metrics until the given gauges have the given values (else fail with the last seen)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.metrics()
            if all(seen.get(name) == value for name, value in expected.items()):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"/metrics did not reach {expected} within {timeout}s: {seen}")
            time.sleep(0.02)


@contextlib.contextmanager
def running_app(secret: str = DEFAULT_SECRET, *switches: str, timeout: float = 20.0) -> Iterator[AppHandle]:
    """Start the app on a free loopback port with these switches; stop it and check that it
    exited by itself, cleanly, and that nothing listens on its port any more."""
    command = [sys.executable, "-m", "apps.graphql_app", "--jwt-secret", secret, *switches]
    with running_child("graphql app", command, READY_MARK, os.environ, timeout) as (child, url):
        assert child.process is not None
        handle = AppHandle(url, child.process, child.output, secret)
        handle.wait_metrics(timeout)  # uvicorn has taken over the socket
        yield handle


if __name__ == "__main__":
    sys.exit(main())
