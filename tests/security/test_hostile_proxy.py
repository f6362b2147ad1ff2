"""The fault proxy against hostile peers (issue 24, finding 7): its memory and its time per
connection are bounded.

Real `python -m socketproof.proxy` children (their memory is read from /proc) or an in-process
FaultProxy, between real WebSocket peers on 127.0.0.1 port 0: wsproto's, or raw frames
where a peer must misbehave. Before: a deflate bomb was inflated whole, a message had no
size bound, the queue counted frames not bytes, and a peer that never read held the relay
(and up to 4,096 queued frames) forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage

from socketproof.proxy import FaultProxy, ProxyProcess
from socketproof.proxy.limits import Limits
from tests.socketproof.proxy.peers import FrameClient, FrameServer, wait_until

MIB = 1 << 20
GROWTH_CAP = 24 * MIB
"""Most the proxy's peak RSS may grow under each attack (its bounds here are 1 MiB)."""
SMALL = Limits(max_message_bytes=MIB, queue_bytes=MIB, write_timeout=1.0)


# ------------------------------------------------------------------------------------ checks


def socket_fds(pid: int | str = "self") -> set[str]:
    """The open sockets of a process (Linux /proc)."""
    found = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith("socket:"):
                found.add(f"{name}={target}")
    return found


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture
def nothing_left() -> Iterator[None]:
    """Fails the test when a socket or a thread it started outlives it (5 s grace)."""
    sockets, threads = socket_fds(), set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra_sockets = socket_fds() - sockets
        extra_threads = {thread for thread in set(threading.enumerate()) - threads if thread.is_alive()}
        if not extra_sockets and not extra_threads:
            return
        assert time.monotonic() < deadline, f"left open: sockets {sorted(extra_sockets)}, threads {extra_threads}"
        time.sleep(0.05)


@dataclasses.dataclass
class Child:
    """A proxy child process: its pid, the sockets it listens with, and its counts once stopped."""

    proxy: ProxyProcess
    pid: int = 0
    listening: frozenset[str] = frozenset()
    counts: dict[str, Any] | None = None

    @property
    def relays_open(self) -> int:
        """Sockets the child holds besides its listener (two per relayed connection)."""
        return len(socket_fds(self.pid) - self.listening)

    def kib(self, field: str) -> int:
        return status_kib(self.pid, field)


@contextlib.contextmanager
def proxy_child(upstream: str, limits: Limits) -> Iterator[Child]:
    """`python -m socketproof.proxy` with `limits`; stopped with SIGTERM afterwards (it writes its counts)."""
    child = Child(ProxyProcess(upstream, limits=limits))
    child.proxy.start()
    try:
        assert child.proxy.process is not None
        child.pid = child.proxy.process.pid
        child.listening = frozenset(socket_fds(child.pid))
        yield child
    finally:
        child.counts = child.proxy.stop()
        assert child.proxy.process is not None and child.proxy.process.returncode == 0


# ------------------------------------------------------------------------------------ hostile peers


def frame(opcode: int, payload: bytes, mask: bytes | None, rsv1: bool = False) -> bytes:
    """One final frame, written by hand (a hostile peer sends what no library would)."""
    size = len(payload)
    bit = 0x80 if mask is not None else 0
    if size < 126:
        length = bytes([bit | size])
    elif size < 1 << 16:
        length = bytes([bit | 126]) + size.to_bytes(2, "big")
    else:
        length = bytes([bit | 127]) + size.to_bytes(8, "big")
    head = bytes([0x80 | (0x40 if rsv1 else 0) | opcode]) + length
    if mask is None:
        return head + payload
    key = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return head + mask + masked


def deflate_bomb(inflated: int) -> bytes:
    """A permessage-deflate payload of `inflated` zero bytes: about a thousandth of that on the wire."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MIB)
    body = b"".join(squeeze.compress(zeros) for _ in range(inflated // MIB)) + squeeze.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    return body[:-4]  # RFC 7692 7.2.1: the sender drops the sync marker


def client_socket(url: str) -> socket.socket:
    """A WebSocket handshake done with wsproto, then the bare socket (the test writes the frames)."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=f"{host}:{port}", target="/ws")))
    while True:
        data = sock.recv(65536)
        assert data, "the handshake did not complete"
        ws.receive_data(data)
        if any(isinstance(event, AcceptConnection) for event in ws.events()):
            return sock


class RawServer:
    """Accepts one WebSocket connection (wsproto's handshake), then hands the bare socket to `role`."""

    def __init__(self, role: Callable[[socket.socket], None]) -> None:
        self.role = role
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "ws://127.0.0.1:%d" % self.listener.getsockname()[1]

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.conn = conn
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            ws.receive_data(data)
            if any(isinstance(event, Request) for event in ws.events()):
                break
        conn.sendall(ws.send(AcceptConnection()))
        self.role(conn)

    def close(self) -> None:
        for sock in (self.conn, self.listener):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.thread.join(5)
        assert not self.thread.is_alive()


class Flood:
    """Sends one 64 KiB binary frame after another until the connection breaks; when it broke."""

    def __init__(self, masked: bool) -> None:
        self.frame = frame(0x2, os.urandom(64 << 10), b"\x01\x02\x03\x04" if masked else None)
        self.started = 0.0
        self.broke = threading.Event()
        self.sent = 0

    def __call__(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        self.started = time.monotonic()
        try:
            while True:
                sock.sendall(self.frame)
                self.sent += len(self.frame)
        except OSError:
            self.broke.set()


def deaf(sock: socket.socket) -> None:
    """A peer that never reads: it only holds its socket open (the test closes it)."""


def drained_to_the_end(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Read what is buffered; True when the proxy's side ended (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# ------------------------------------------------------------------------------------ (a) deflate bomb


def test_a_deflate_bomb_is_closed_with_1009_and_never_inflated(nothing_left: None) -> None:
    """256 MiB of zeros in ~256 KB, compressed: the proxy (bound 1 MiB) answers 1009 to both sides
    and its peak RSS grows by less than GROWTH_CAP (it would need the whole 256 MiB to relay it)."""
    bomb = frame(0x2, deflate_bomb(256 * MIB), b"\x0a\x0b\x0c\x0d", rsv1=True)
    with FrameServer(deflate=True) as server, proxy_child(server.url, SMALL) as child:
        warm = FrameClient(child.proxy.url, deflate=True)  # a first deflate connection: lazy imports and zlib
        warm.send(TextMessage("warm " * 1000))
        assert warm.recorder.wait_for(1) == [("text", "warm " * 1000, True)]
        warm.close()
        wait_until(lambda: child.relays_open == 0)
        before = child.kib("VmRSS")

        client = FrameClient(child.proxy.url, deflate=True)
        try:
            assert client.accepted is not None
            assert [extension.name for extension in client.accepted.extensions] == ["permessage-deflate"]
            with client.lock:
                client.sock.sendall(bomb)
            assert client.recorder.wait_for(1, timeout=10) == [("close", 1009, "message too big")]
            assert server.connections[-1].wait_for(1) == [("close", 1009, "message too big")]
            growth = (child.kib("VmHWM") - before) * 1024
        finally:
            client.close()
        wait_until(lambda: child.relays_open == 0, timeout=10)
    assert growth < GROWTH_CAP, f"the proxy's peak RSS grew by {growth / MIB:.1f} MiB"
    assert child.counts is not None and child.counts["limits"] == {"up:message_too_big": 1}, child.counts
    output = "".join(child.proxy.output)
    assert "message too big" in output and "closed at a limit: up:message_too_big=1" in output


# ------------------------------------------------------------------------------------ (b) never reads


@pytest.mark.parametrize("deaf_side", ["server", "client"])
def test_a_peer_that_never_reads_ends_the_relay_within_the_write_timeout(deaf_side: str, nothing_left: None) -> None:
    """One side floods 64 KiB frames, the other never reads: within the write timeout (1 s) of the
    stall both TCP legs are closed, the flooder sees its connection break, the proxy's memory stays
    under GROWTH_CAP (queue 1 MiB), and the stall is counted on the deaf side's direction."""
    flood = Flood(masked=deaf_side == "server")
    server = RawServer(deaf if deaf_side == "server" else flood)
    peer: socket.socket | None = None
    flooding: threading.Thread | None = None
    try:
        with proxy_child(server.url, SMALL) as child:
            before = child.kib("VmRSS")
            peer = client_socket(child.proxy.url)
            if deaf_side == "server":
                flooding = threading.Thread(target=flood, args=(peer,), daemon=True)
                flooding.start()
            assert flood.broke.wait(15), f"the relay did not end: {flood.sent / MIB:.0f} MiB sent, still open"
            took = time.monotonic() - flood.started
            wait_until(lambda: child.relays_open == 0)
            growth = (child.kib("VmHWM") - before) * 1024
            deaf_end = peer if deaf_side == "client" else server.conn
            assert deaf_end is not None and drained_to_the_end(deaf_end), "the deaf peer's connection stayed open"
    finally:
        if peer is not None:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)  # wakes a flood still blocked in sendall (the relay never ended)
            peer.close()
        if flooding is not None:
            flooding.join(5)
        server.close()
    assert took < 10, f"the relay ended {took:.1f}s after the flood began"
    assert growth < GROWTH_CAP, f"the proxy's peak RSS grew by {growth / MIB:.1f} MiB"
    direction = "up" if deaf_side == "server" else "down"
    assert child.counts is not None and child.counts["limits"] == {f"{direction}:write_timeout": 1}, child.counts
    assert "write timeout" in "".join(child.proxy.output)


# ------------------------------------------------------------------------------------ (c) too big


def proxied_text(size: int) -> list[Any]:
    """A text message of `size` bytes in four fragments."""
    quarter, rest = divmod(size, 4)
    parts = ["t" * quarter] * 3 + ["t" * (quarter + rest)]
    return [TextMessage(part, message_finished=index == 3) for index, part in enumerate(parts)]


@pytest.mark.parametrize(("kind", "spec", "deflate"), [
    ("binary", "", False),
    ("fragmented text", "", False),
    ("binary", "drop=0", False),  # a message fault collects whole messages
    ("binary", "", True),  # permessage-deflate passed through: counted after inflating
])
def test_a_message_over_the_bound_is_closed_with_1009_to_both_sides(
    kind: str, spec: str, deflate: bool, nothing_left: None
) -> None:
    bound = 64 << 10

    def message(size: int) -> list[Any]:
        return [BytesMessage(os.urandom(size))] if kind == "binary" else proxied_text(size)

    with FrameServer(deflate=deflate) as server, FaultProxy(server.url, spec, seed=1,
                                                             limits=Limits(max_message_bytes=bound)) as proxy:
        client = FrameClient(proxy.url, deflate=deflate)
        try:
            at_bound = message(bound)
            for event in at_bound:
                client.send(event)
            echoed = client.recorder.wait_for(len(at_bound))
            assert [record[1] for record in echoed] == [event.data for event in at_bound]  # exactly the bound passes
            for event in message(bound + 1):
                client.send(event)
            for recorder in (client.recorder, server.connections[0]):  # frames before the bad one may echo first
                wait_until(lambda recorder=recorder: any(record[0] == "close" for record in recorder.records))
                closes = [record for record in recorder.records if record[0] == "close"]
                assert closes[0] == ("close", 1009, "message too big"), recorder.records[-3:]  # then 1006 at EOF
            assert client.ended.wait(10), "the proxy did not end the connection after the close"
            counts = proxy.counts()
        finally:
            client.close()
        wait_until(lambda: proxy.connections == 0, timeout=10)
    assert counts["limits"] == {"up:message_too_big": 1}
