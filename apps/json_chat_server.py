"""A JSON chat server written with the `websockets` library: a service nobody on this team wrote
the WebSocket layer of, speaking docs/examples/json_chat_adapter.py's protocol.

`python -m apps.json_chat_server --port 0 [--ping-interval S] [--fault drop=0.2]`
prints `json-chat listening on ws://127.0.0.1:PORT` once it listens and serves until
SIGTERM/SIGINT; `chat_server()` runs it for a test. `GET /metrics`
answers Prometheus text with `chat_connections` (open connections). Test switches, each one
bug: `drop=P`, `duplicate=P`, `reorder=P` (applied to room broadcasts per recipient),
`leak` (closed connections stay counted in /metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

READY_MARK = "json-chat listening on "


@contextlib.contextmanager
def chat_server(*args: str) -> Iterator[str]:
    """The server on a free loopback port for a test; yields its ws:// URL; stopped and checked gone."""
    from apps.app_child import running_child

    command = [sys.executable, "-m", "apps.json_chat_server", "--port", "0", *args]
    with running_child("json chat server", command, READY_MARK, os.environ) as (_, url):
        yield url


class ChatServer:
    def __init__(self, faults: dict[str, float], seed: int | None) -> None:
        self.faults = faults
        self.rng = random.Random(seed)
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.open = 0
        self.held: dict[ServerConnection, str] = {}  # reorder: one message held per recipient

    def metrics(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path != "/metrics":
            return None
        body = f"# TYPE chat_connections gauge\nchat_connections {self.open}\n".encode()
        return Response(HTTPStatus.OK.value, "OK", Headers({"Content-Type": "text/plain; version=0.0.4"}), body)

    async def handle(self, ws: ServerConnection) -> None:
        self.open += 1
        joined: set[str] = set()
        try:
            async for raw in ws:
                await self.on_message(ws, raw, joined)
        except Exception:  # noqa: BLE001 - one bad client never takes the server down
            pass
        finally:
            for room in joined:
                self.rooms.get(room, set()).discard(ws)
            self.held.pop(ws, None)
            if "leak" not in self.faults:
                self.open -= 1

    async def on_message(self, ws: ServerConnection, raw: Any, joined: set[str]) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            await ws.send(json.dumps({"op": "error", "reason": "not JSON"}))
            return
        op = msg.get("op") if isinstance(msg, dict) else None
        if op == "join" and isinstance(msg.get("room"), str):
            room = msg["room"]
            self.rooms.setdefault(room, set()).add(ws)
            joined.add(room)
            await ws.send(json.dumps({"op": "joined", "room": room}))
        elif op == "publish" and isinstance(msg.get("room"), str):
            out = json.dumps({"op": "message", "room": msg["room"], "body": msg.get("body")})
            for member in list(self.rooms.get(msg["room"], ())):
                await self.deliver(member, out)
        elif op == "echo":
            await ws.send(json.dumps({"op": "echo", "ref": msg.get("ref"), "body": msg.get("body")}))
        else:
            reply: dict[str, Any] = {"op": "error", "reason": f"unknown op {op!r}"}
            if isinstance(msg, dict) and "ref" in msg:
                reply["ref"] = msg["ref"]
            await ws.send(json.dumps(reply))

    async def deliver(self, member: ServerConnection, out: str) -> None:
        """One broadcast to one member, through the test switches."""
        faults, rng = self.faults, self.rng
        try:
            if rng.random() < faults.get("drop", 0.0):
                return
            if rng.random() < faults.get("reorder", 0.0) and member not in self.held:
                self.held[member] = out  # sent after the next one
                return
            await member.send(out)
            if rng.random() < faults.get("duplicate", 0.0):
                await member.send(out)
            held = self.held.pop(member, None)
            if held is not None:
                await member.send(held)
        except Exception:  # noqa: BLE001 - a member that went away
            pass


def parse_faults(text: str) -> dict[str, float]:
    faults: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in ("drop", "duplicate", "reorder", "leak"):
            raise SystemExit(f"json_chat_server: error: unknown fault {name!r}")
        faults[name] = float(value) if value else 1.0
    return faults


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="json_chat_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ping-interval", type=float, default=1.0, help="WebSocket pings every S seconds; 0: none")
    parser.add_argument("--fault", default="", help="drop=P,duplicate=P,reorder=P,leak")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    chat = ChatServer(parse_faults(args.fault), args.seed)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(chat.handle, "127.0.0.1", args.port, process_request=chat.metrics,
                     ping_interval=args.ping_interval or None, ping_timeout=args.ping_interval * 4 or None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"{READY_MARK}ws://127.0.0.1:{port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
