"""Reading a test app's WebSocket with a deadline: every wait here is bounded in time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import websocket

TIMEOUT = 5.0


def connect(url: str, **options: Any) -> websocket.WebSocket:
    """A websocket-client connection (it sends an Origin of the URL's host, as a browser would)."""
    return websocket.create_connection(url, timeout=TIMEOUT, **options)


def receive_json(ws: websocket.WebSocket, timeout: float = TIMEOUT) -> Any:
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def collect(ws: websocket.WebSocket, want: Callable[[Any], bool], count: int, timeout: float = TIMEOUT) -> list[Any]:
    """The next `count` frames `want` accepts (others are skipped), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    out: list[Any] = []
    while len(out) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"got {len(out)} of {count} frames within {timeout:g}s: {out[-5:]}")
        message = receive_json(ws, left)
        if want(message):
            out.append(message)
    return out


def silent(ws: websocket.WebSocket, seconds: float) -> bool:
    """True when nothing arrives on `ws` for `seconds`."""
    ws.settimeout(seconds)
    try:
        ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    return False
