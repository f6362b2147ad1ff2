"""Fixtures of the client's real-socket tests: the JSON chat server (a `websockets`-library
server nobody here wrote the WebSocket layer of) and a check that a test left no
connection or receive thread behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.client.support import CHAT_PING_INTERVAL, ROOT


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    """tests/support/json_chat_server.py on a free loopback port, pinging every 0.2 s; its
    ws:// base URL. Stopped with SIGTERM afterwards, and it must exit by itself."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.json_chat_server", "--port", "0",
         "--ping-interval", str(CHAT_PING_INTERVAL)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), process.stderr.read() if process.stderr else url
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise AssertionError("the chat server did not stop on SIGTERM") from None
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        assert code in (0, -signal.SIGTERM), f"the chat server exited with {code}"


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
