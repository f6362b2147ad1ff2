"""A real python-socketio service for the socketio adapter's tests, and how tests run it.

The app is plain python-socketio usage, as a team would write it: a JWT checked in
CONNECT's auth payload (`{"token": ...}`), `join` (enter a room, ack), `message`
(`{"room", "body"}`: broadcast to the room, sender included, ack) and `echo` (ack with
the argument), plus `GET /metrics` in Prometheus text with the connected-client count
(`socketio_connected N`). Test switches break the room broadcasts on purpose:
`--drop-every N` drops every Nth one, `--duplicate-every N` sends every Nth twice and
`--reorder-every N` holds every Nth back until the same sender's next one to that room.
`--plain` serves a WebSocket that is not Socket.IO instead (the "wrong server" test);
`--no-echo` leaves out the `echo` event and `--join-event NAME` names the join event otherwise,
as apps written without Socketproof in mind do (the pre-flight's missing-operation tests).

Run: `python -m apps.socketio_app --port 0 --jwt-secret S`; it prints
`socketio app listening on http://127.0.0.1:PORT` once it listens. `running_app()` does
that as a subprocess and stops it again.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apps import app_child
from apps.app_child import running_child

READY_MARK = "socketio app listening on "
ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Faults:
    """Which room broadcasts to break (0 = never); `done` counts what was broken."""

    drop_every: int = 0
    duplicate_every: int = 0
    reorder_every: int = 0
    done: dict[str, int] = dataclasses.field(default_factory=lambda: {"drop": 0, "duplicate": 0, "reorder": 0})


def create_app(secret: str, faults: Faults, ping_interval: float, ping_timeout: float, *, echo: bool = True,
               join_event: str = "join") -> Any:
    """The ASGI app: python-socketio's AsyncServer with /metrics beside it (`echo` False: no
    echo event; `join_event`: the event that joins a room)."""
    import jwt
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=ping_interval, ping_timeout=ping_timeout)
    connected: set[str] = set()
    published = [0]
    held: dict[tuple[str, str], Any] = {}

    @sio.event
    async def connect(sid: str, environ: dict, auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise socketio.exceptions.ConnectionRefusedError("missing token: send {\"token\": <jwt>} as auth")
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as error:
            raise socketio.exceptions.ConnectionRefusedError(f"invalid token: {error}") from None
        await sio.save_session(sid, {"user": claims.get("sub")})
        connected.add(sid)

    @sio.event
    async def disconnect(sid: str, *reason: Any) -> None:
        connected.discard(sid)
        for key in [key for key in held if key[1] == sid]:
            held.pop(key)

    async def on_join(sid: str, room: Any) -> dict:
        if not isinstance(room, str) or not room:
            return {"error": "join needs a room name"}
        await sio.enter_room(sid, room)
        return {"ok": True, "room": room}

    async def on_echo(sid: str, data: Any) -> Any:
        return data

    sio.on(join_event, on_join)
    if echo:
        sio.on("echo", on_echo)

    @sio.event
    async def message(sid: str, data: Any) -> dict:
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str):
            return {"error": "message needs {room, body}"}
        published[0] += 1
        count = published[0]
        if faults.drop_every and count % faults.drop_every == 0:
            faults.done["drop"] += 1
            return {"ok": True}
        key = (room, sid)
        if faults.reorder_every and count % faults.reorder_every == 0 and key not in held:
            held[key] = data
            faults.done["reorder"] += 1
            return {"ok": True}
        await sio.emit("message", data, to=room)
        if key in held:  # the held-back one goes out after its successor
            await sio.emit("message", held.pop(key), to=room)
        if faults.duplicate_every and count % faults.duplicate_every == 0:
            faults.done["duplicate"] += 1
            await sio.emit("message", data, to=room)
        return {"ok": True}

    async def metrics(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            status, body = 404, b"not found\n"
        else:
            status = 200
            body = (
                "# HELP socketio_connected Connected Socket.IO clients.\n# TYPE socketio_connected gauge\n"
                f"socketio_connected {len(connected)}\n"
                + "".join(f'socketio_faults_total{{kind="{k}"}} {v}\n' for k, v in faults.done.items())
            ).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; version=0.0.4")]})
        await send({"type": "http.response.body", "body": body})

    return socketio.ASGIApp(sio, other_asgi_app=metrics)


def create_plain_app() -> Any:
    """`--plain`: a WebSocket server that is not Socket.IO (it greets in its own JSON)."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found\n"})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '{"type":"welcome","server":"plain"}'})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--jwt-secret", required=True)
    parser.add_argument("--ping-interval", type=float, default=25.0)
    parser.add_argument("--ping-timeout", type=float, default=20.0)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--duplicate-every", type=int, default=0)
    parser.add_argument("--reorder-every", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="serve a plain WebSocket that is not Socket.IO")
    parser.add_argument("--no-echo", action="store_true", help="no `echo` event (as most apps have none)")
    parser.add_argument("--join-event", default="join", help="the event that joins a room (default: join)")
    args = parser.parse_args(argv)

    import uvicorn

    faults = Faults(args.drop_every, args.duplicate_every, args.reorder_every)
    app = create_plain_app() if args.plain else create_app(args.jwt_secret, faults, args.ping_interval,
                                                          args.ping_timeout, echo=not args.no_echo,
                                                          join_event=args.join_event)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, ws="wsproto", log_level="warning", lifespan="off", timeout_graceful_shutdown=3)
    print(f"{READY_MARK}http://{host}:{port}", flush=True)
    # uvicorn re-raises SIGTERM to the previous handler once it has shut down: make that a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


# -- for tests ------------------------------------------------------------------------


@dataclasses.dataclass
class AppHandle(app_child.AppHandle):
    """A running Socket.IO app (app_child.AppHandle) and the secret its tokens are signed with."""

    secret: str = ""

    def wait_connected(self, count: int, timeout: float = 10.0) -> None:
        self.wait_metric("socketio_connected", count, timeout)


@contextlib.contextmanager
def running_app(secret: str = "socketio-test-secret-of-at-least-32-bytes", *, start_timeout: float = 20.0,
                **switches: float | bool | str) -> Iterator[AppHandle]:
    """Start the app on a free loopback port; stop it after and check it is gone.

    `switches` are the command-line options by their dest (`ping_interval=1`,
    `drop_every=20`, `no_echo=True`, `join_event="enter"`, ...).
    """
    command = [sys.executable, "-m", "apps.socketio_app", "--port", "0", "--jwt-secret", secret]
    for name, value in switches.items():
        flag = "--" + name.replace("_", "-")
        command += [flag] if value is True else [flag, str(value)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    with running_child("socketio app", command, READY_MARK, env, start_timeout) as (child, url):
        assert child.process is not None
        yield AppHandle(url, child.process, child.output, secret)


if __name__ == "__main__":
    sys.exit(main())
