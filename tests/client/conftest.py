"""Fixtures of the client's real-socket tests: the JSON chat server (a `websockets`-library
server nobody here wrote the WebSocket layer of) and a check that a test left no
connection or receive thread behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from apps.json_chat_server import chat_server
from tests.client.support import CHAT_PING_INTERVAL


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    """apps/json_chat_server.py on a free loopback port, pinging every 0.2 s; its
    ws:// base URL. Stopped with SIGTERM afterwards: it must exit 0 by itself and free its port."""
    with chat_server("--ping-interval", str(CHAT_PING_INTERVAL)) as url:
        yield url


def _sockets() -> set[str]:
    """This process's open sockets (Linux: /proc/self/fd), empty where that cannot be read."""
    found = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{name}={target}")
    return found


def _receive_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("socketproof-recv-") and t.is_alive()}


@pytest.fixture
def nothing_left_open() -> Iterator[None]:
    """Fails the test when a socket it opened or a transport's receive thread outlives it (2 s grace)."""
    sockets, threads = _sockets(), _receive_threads()
    yield
    deadline = time.monotonic() + 2.0
    while True:
        extra_sockets, extra_threads = _sockets() - sockets, _receive_threads() - threads
        if not extra_sockets and not extra_threads:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left open: sockets {sorted(extra_sockets)}, threads {extra_threads}")
        time.sleep(0.02)
