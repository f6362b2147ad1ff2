"""Helpers of the client's tests: a scripted one-connection WebSocket server (exact bytes each
way, for what no real server sends), and stand-ins for the recorder hooks and Locust's
request event that keep what they were told."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wsproto.frame_protocol import FrameProtocol, Opcode

from client.hooks import NoHooks

ROOT = Path(__file__).resolve().parents[2]
CHAT_PING_INTERVAL = 0.2
"""The JSON chat server's WebSocket ping interval in these tests (its ping timeout is 4x that)."""
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def unmasked(opcode: int, payload: bytes, first: int | None = None) -> bytes:
    """A server frame (payloads under 64 KiB); `first` overrides the first byte (FIN, RSV, opcode)."""
    n = len(payload)
    head = bytes([0x80 | opcode if first is None else first])
    head += bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
    return head + payload


class Peer:
    """The scripted server's side of one connection: read the client's frames, send frames."""

    def __init__(self, conn: socket.socket, request_head: str) -> None:
        self.conn = conn
        self.request_head = request_head
        self._proto = FrameProtocol(client=False, extensions=[])  # insists on masked client frames
        self._pending: list[tuple[Opcode, Any]] = []

    def read(self) -> tuple[Opcode, Any] | None:
        """The client's next frame as (opcode, payload), None once it ended TCP."""
        while not self._pending:
            data = self.conn.recv(65536)
            if not data:
                return None
            self._proto.receive_bytes(data)
            self._pending.extend((f.opcode, f.payload) for f in self._proto.received_frames())
        return self._pending.pop(0)

    def read_json(self) -> Any:
        """The client's next text frame, parsed (pongs on the way are skipped)."""
        while True:
            frame = self.read()
            assert frame is not None, "the client ended TCP"
            if frame[0] is Opcode.TEXT:
                return json.loads(frame[1])
            assert frame[0] is Opcode.PONG, frame

    def send_json(self, msg: Any) -> None:
        self.conn.sendall(unmasked(0x1, json.dumps(msg).encode()))

    def send_close(self, code: int, reason: str = "") -> None:
        self.conn.sendall(unmasked(0x8, code.to_bytes(2, "big") + reason.encode()))


class ScriptedServer:
    """Accepts one connection on 127.0.0.1 (port 0), answers the upgrade (choosing the first
    subprotocol offered, or `subprotocol` when given), then runs `script(peer)`; what it returns
    is `result`. Use as a context manager: leaving it waits for the script and re-raises what
    failed in it."""

    def __init__(self, script: Callable[[Peer], Any], subprotocol: str | None = None) -> None:
        self.script = script
        self.subprotocol = subprotocol
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.result: Any = None
        self.request_head = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(5)
        self.listener.close()
        assert not self.thread.is_alive(), "the scripted server did not finish"
        if self.error is not None and exc[0] is None:
            raise self.error

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    assert chunk, "no upgrade request"
                    head += chunk
                self.request_head = head.decode("latin-1")
                headers = {name.strip().lower(): value.strip() for name, _, value in
                           (line.partition(":") for line in self.request_head.split("\r\n")[1:] if line)}
                key = headers["sec-websocket-key"]
                accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
                protocol = self.subprotocol or headers.get("sec-websocket-protocol", "").split(",")[0].strip()
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              f"Sec-WebSocket-Accept: {accept}\r\n"
                              + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "")
                              + "\r\n").encode())
                self.result = self.script(Peer(conn, self.request_head))
        except BaseException as error:  # re-raised by __exit__
            self.error = error


HOOKS = ("opened", "subscribed", "published", "acked", "publish_failed", "delivered", "keepalive", "state",
         "update_sent", "frame", "error", "closed")


class FakeRecorder(NoHooks):
    """Collects the hook calls (client/hooks.py) as (name, args), keyword arguments as
    (name, value) pairs after the positional ones, so tests can read the history."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.lock = threading.Lock()

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for call, args in self.calls if call == name]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _recording(name: str) -> Any:
    def hook(self: FakeRecorder, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.calls.append((name, args + tuple(kwargs.items())))

    hook.__name__ = name
    return hook


for _name in HOOKS:
    setattr(FakeRecorder, _name, _recording(_name))


class FakeRequestEvent:
    """Stands in for Locust's `environment.events.request` (only its fire(**kwargs))."""

    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def fire(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for kwargs in self.fired if kwargs["name"] == name]
