"""The fault proxy itself: it forwards, and each fault does what it says, on live connections."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with FaultProxy(server.server_address[:2]) as fault_proxy:
            yield fault_proxy
    finally:
        server.shutdown()
        server.server_close()


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=5)


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        assert chunk, "connection ended"
        got += chunk
    return got


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_forwards_both_ways(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert roundtrip(sock, b"hello") == b"hello"
        assert roundtrip(sock, b"x" * 200_000) == b"x" * 200_000
    assert proxy.accepted == 1


def test_latency_switched_on_a_live_connection(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        roundtrip(sock, b"warm")
        proxy.latency = 0.2
        started = time.monotonic()
        assert roundtrip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.4  # 0.2 s each way
        proxy.latency = 0.0


def test_bandwidth_throttle(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.bandwidth = 100_000  # bytes/s each way
        started = time.monotonic()
        assert roundtrip(sock, b"y" * 50_000) == b"y" * 50_000
        assert time.monotonic() - started >= 0.4  # 50 kB at 100 kB/s (both ways overlap)


def test_cut_resets_both_sides(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        roundtrip(sock, b"before")
        wait_for(lambda: proxy.connections == 1)
        assert proxy.cut(rst=True) == 1
        with pytest.raises((ConnectionResetError, AssertionError, BrokenPipeError)):
            for _ in range(3):
                roundtrip(sock, b"after")
                time.sleep(0.05)
    with connect(proxy) as sock:  # new connections still work
        assert roundtrip(sock, b"again") == b"again"


def test_blackhole_forwards_nothing_and_sends_no_fin(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        roundtrip(sock, b"before")
        proxy.blackhole(True)
        sock.sendall(b"into the void")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):  # no data and no FIN (recv would return b"")
            sock.recv(100)
        proxy.blackhole(False)
        sock.settimeout(5)
        assert roundtrip(sock, b"after") == b"after"  # what fell in the hole stays lost
    assert proxy.dropped_bytes >= len(b"into the void")
