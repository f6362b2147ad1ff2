"""Hostile targets against the real client (issue 24, findings 4-6): one plain-socket server on
127.0.0.1 (port 0) per behaviour, and client/transport.py connecting to it.

- Finding 4: a server that floods pings and reads nothing must not leave the connection open
  but dead (a pong written from gevent's hub used to raise BlockingSwitchOutError there).
- Finding 5: a message in 16k one-byte fragments used to cost seconds of CPU (a quadratic sum).
- Finding 6: the upgrade had no overall deadline and no size cap: a server dripping its answer,
  or sending one endless header line, kept `connect(timeout=...)` waiting, and memory growing.

Each test ends within its bound with a named error (or the whole message), this process's peak
RSS grows by under the cap it states (PeakRss; each cap a generous multiple of what was
measured), and it stops what it started (servers joined, sockets closed).
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from client.errors import ConnectionClosed, HandshakeRejected, Timeout
from client.framing import MAX_FRAGMENTS
from client.transport import State, Transport
from tests.client.support import GUID, unmasked

Behaviour = Callable[[socket.socket, threading.Event], None]


class Ends:
    """What a Transport reports: messages and the one close."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.closes: list[tuple[int | None, str, str]] = []
        self.pings = 0

    def message_received(self, payload: str | bytes, t_recv: float) -> None:
        self.messages.append(payload)

    def ping_received(self, t: float) -> None:
        self.pings += 1

    def connection_lost(self, code: int | None, reason: str, initiator: str) -> None:
        self.closes.append((code, reason, initiator))


class Hostile:
    """Accepts one connection on 127.0.0.1:0 and runs `behaviour(conn, stop)` on it in a thread.
    Leaving sets `stop`, closes the listener and joins the thread (it must end within 5 s)."""

    def __init__(self, behaviour: Behaviour, recv_buffer: int | None = None) -> None:
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.listener = socket.socket()
        if recv_buffer is not None:  # inherited by the accepted socket: a server that fills up sooner
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(5)
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        assert not self.thread.is_alive(), "the hostile server did not stop"
        if self.error is not None and exc[0] is None:
            raise self.error

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            try:
                self.behaviour(conn, self.stop)
            except OSError:
                pass  # the client gave up on us: what these servers are for
            except BaseException as error:  # noqa: BLE001 - kept for the test to see
                self.error = error


def read_request(conn: socket.socket) -> str:
    """The client's upgrade request head."""
    head = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("no upgrade request")
        head += chunk
    return head.decode("latin-1")


def upgrade(conn: socket.socket) -> None:
    """Read the request and answer 101, as a WebSocket server would."""
    request = read_request(conn)
    key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
               if line.lower().startswith("sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


class PeakRss:
    """How far this process's resident set grew above where it was at entry, at its peak, in bytes.
    Linux: the high-water mark is reset at entry (/proc/self/clear_refs), so earlier tests' peaks do
    not hide growth; where that is refused, ru_maxrss's growth (a lower bound) is all there is."""

    def __enter__(self) -> PeakRss:
        self.growth = 0
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self.reset, self.start = True, _status_kib("VmRSS")
        except OSError:
            self.reset, self.start = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_kib("VmHWM") if self.reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.growth = (peak - self.start) * 1024


MIB = 1024 * 1024


def assert_grew_under(rss: PeakRss, cap: int) -> None:
    """The issue's "memory under a stated cap" for one hostile run: the peak growth of this process
    (client, hostile server thread and all) while the run went, against `cap` bytes."""
    assert rss.growth < cap, f"grew {rss.growth / MIB:.1f} MiB, the cap is {cap / MIB:.0f} MiB"


def _sockets() -> set[str]:
    """This process's open sockets (Linux: /proc/self/fd)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.fixture(autouse=True)
def nothing_left_open() -> Iterator[None]:
    """Every socket a test opened (client, server, listener) is closed within 2 s of its end."""
    before = _sockets()
    yield
    wait_until(lambda: not _sockets() - before, 2.0)
    assert not _sockets() - before, f"left open: {sorted(_sockets() - before)}"


@pytest.fixture
def ends() -> Ends:
    return Ends()


def transport(ends: Ends, timeout: float, **kwargs: object) -> Transport:
    return Transport(timeout=timeout, label="hostile", listener=ends, **kwargs)  # type: ignore[arg-type]


def wait_until(condition: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- finding 4: a ping flood from a server that reads nothing --------------------------------------


def flood(frame: bytes, seconds: float) -> Behaviour:
    """Upgrade, then send `frame` over and over for `seconds` (or until stopped), reading nothing.
    `send`, not `sendall`: a sendall that times out has sent part of its data, and sending it
    again would cut a frame in two (the client then rightly fails with 1002, not what is tested)."""
    burst = frame * 512

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        upgrade(conn)
        conn.settimeout(0.5)
        started, pending = time.monotonic(), b""
        while not stop.is_set() and time.monotonic() - started < seconds:
            pending = pending or burst
            try:
                pending = pending[conn.send(pending):]
            except TimeoutError:
                continue  # the client reads slower than we send: keep trying until the time is up
        stop.wait(10)  # still reading nothing

    return behaviour


def ends_not_reading(ends: Ends, client: Transport) -> None:
    """The named end of a flood: one close, by the client, 1008 "the server is not reading"."""
    came = f"{ends.pings} pings, {len(ends.messages)} messages"
    assert len(ends.closes) == 1, f"no close within 10 s ({came}): open but dead"
    code, reason, initiator = ends.closes[0]
    assert (code, initiator) == (1008, "client") and "the server is not reading" in reason, ends.closes
    assert (client.close_info.code, client.close_info.reason) == (code, reason)
    assert client.state is State.CLOSED


def test_a_ping_flood_from_a_server_that_reads_nothing_never_leaves_the_connection_open_but_dead(
    ends: Ends,
) -> None:
    """The client's pongs (coalesced while they wait) fill its send buffer and nothing drains it:
    within 10 s the connection fails with a named close (1008, the server is not reading), never
    stays OPEN with its receive path dead; this process grows by under 16 MiB meanwhile
    (measured: ~0.5 MiB; the pongs waiting are capped at BACKLOG_LIMIT, 1 MiB)."""
    with Hostile(flood(unmasked(0x9, b"p" * 125), 8.0), recv_buffer=4096) as server, PeakRss() as rss:
        client = transport(ends, timeout=1.0)
        started = time.monotonic()
        client.connect(server.url)
        try:
            wait_until(lambda: bool(ends.closes), 10.0)
            seconds = time.monotonic() - started
            assert ends.pings > 100, ends.pings  # the flood came
            ends_not_reading(ends, client)
        finally:
            client.drop()
            server.stop.set()
    assert seconds < 10.0, f"{seconds:.2f}s"
    assert_grew_under(rss, 16 * MIB)


def test_replies_sent_from_the_event_loop_to_a_server_that_reads_nothing_fail_with_a_named_close(
    ends: Ends,
) -> None:
    """As an adapter answers a protocol's own pings (Engine.IO "2" -> "3") from the receive path:
    data replies are not coalesced like pongs, so the connection fails (1008, the server is not
    reading) within 10 s rather than stay open with its receive path dead; this process grows by
    under 64 MiB meanwhile (measured: ~14 MiB, most of it the >100k messages the test keeps)."""
    with Hostile(flood(unmasked(0x1, b"2"), 8.0), recv_buffer=4096) as server, PeakRss() as rss:
        client = transport(ends, timeout=1.0)

        def answer(payload: str | bytes, t_recv: float) -> None:
            ends.messages.append(payload)
            if payload == "2":
                client.send("3")

        ends.message_received = answer  # type: ignore[method-assign]
        started = time.monotonic()
        client.connect(server.url)
        try:
            wait_until(lambda: bool(ends.closes), 10.0)
            seconds = time.monotonic() - started
            assert len(ends.messages) > 100, len(ends.messages)
            ends_not_reading(ends, client)
        finally:
            client.drop()
            server.stop.set()
    assert seconds < 10.0, f"{seconds:.2f}s"
    assert_grew_under(rss, 64 * MIB)


# -- finding 6: the opening handshake -------------------------------------------------------------


def drip(answer: bytes, every: float, tls: bool = False) -> Behaviour:
    """Read the request (TLS: the ClientHello's first segment), then send `answer` one byte every
    `every` s (for at most 8 s)."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        if tls:
            conn.recv(4096)
        else:
            read_request(conn)
        started = time.monotonic()
        for byte in answer:
            if stop.wait(every) or time.monotonic() - started > 8.0:
                return
            conn.sendall(bytes([byte]))

    return behaviour


def test_a_handshake_answer_dripping_one_byte_every_half_second_times_out_at_the_connect_timeout(
    ends: Ends,
) -> None:
    """The answer's bytes keep coming, each in time for a per-read timeout: only an overall deadline
    ends the upgrade, with Timeout naming what came; this process grows by under 16 MiB meanwhile
    (measured: ~0 MiB)."""
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with Hostile(drip(answer, 0.5)) as server, PeakRss() as rss:
        client = transport(ends, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(Timeout) as caught:
            client.connect(server.url)
        seconds = time.monotonic() - started
    assert seconds < 1.0 + 0.75, f"connect(timeout=1) took {seconds:.2f}s"
    assert "no complete answer within 1s" in str(caught.value) and "bytes of it" in str(caught.value)
    assert_grew_under(rss, 16 * MIB)
    assert client.state is State.CLOSED and ends.closes == []


def test_a_tls_handshake_dripping_one_byte_at_a_time_times_out_at_the_connect_timeout(ends: Ends) -> None:
    """wss://: the server's first TLS record header claims 16 KiB, then comes a byte at a time;
    under gevent each TLS read gets the whole timeout again, so only an overall deadline ends it.
    This process grows by under 16 MiB meanwhile (measured: ~1.7 MiB)."""
    record = b"\x16\x03\x03\x40\x00" + b"\x02" * 64
    with Hostile(drip(record, 0.3, tls=True)) as server, PeakRss() as rss:
        client = transport(ends, timeout=1.0, ssl_context=ssl.create_default_context())
        started = time.monotonic()
        with pytest.raises(Timeout) as caught:
            client.connect(server.url.replace("ws://", "wss://"))
        seconds = time.monotonic() - started
    assert seconds < 1.0 + 0.75, f"connect(timeout=1) took {seconds:.2f}s"
    assert "no TCP/TLS connection within 1s" in str(caught.value), caught.value
    assert_grew_under(rss, 16 * MIB)
    assert client.state is State.CLOSED


@pytest.mark.parametrize(
    ("start", "status", "what"),
    [(b"HTTP/1.1 101 Switching Protocols\r\nX-Endless: ", 101, "a head over 65536 bytes"),
     (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1000000000\r\n\r\n", 400, "a body over 1048576 bytes")],
    ids=["header", "body"],
)
def test_an_endless_answer_fails_with_a_size_error_and_bounded_memory(
    ends: Ends, start: bytes, status: int, what: str,
) -> None:
    """One header line that never ends, or a refusal's endless body (up to 3 MB or 8 s): the client
    stops at its cap with HandshakeRejected `response_too_large`, and this process grows by under
    50 MB meanwhile (the byte-by-byte reader kept ~42 bytes of objects per header byte)."""

    def endless(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(start)
        started, sent = time.monotonic(), 0
        while not stop.is_set() and sent < 3_000_000 and time.monotonic() - started < 8.0:
            conn.sendall(b"a" * 4096)
            sent += 4096

    with Hostile(endless) as server, PeakRss() as rss:
        client = transport(ends, timeout=10.0)
        started = time.monotonic()
        with pytest.raises(HandshakeRejected) as caught:
            client.connect(server.url)
        seconds = time.monotonic() - started
    assert (caught.value.status, caught.value.code) == (status, "response_too_large"), caught.value
    assert what in caught.value.message
    assert_grew_under(rss, 50 * MIB)
    assert seconds < 5.0, f"{seconds:.2f}s"
    assert client.state is State.CLOSED


def test_the_bounded_head_reader_takes_nothing_after_the_head(ends: Ends) -> None:
    """The 101 and the first frames in one segment: the frames are the transport's, every one."""

    def eager(conn: socket.socket, stop: threading.Event) -> None:
        request = read_request(conn)
        key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode()
                     + unmasked(0x1, b"\n\r\nfirst\n") + unmasked(0x1, b"second"))
        stop.wait(10)

    with Hostile(eager) as server:
        client = transport(ends, timeout=2.0)
        client.connect(server.url)
        try:
            wait_until(lambda: len(ends.messages) >= 2 or bool(ends.closes), 5.0)
            assert ends.messages == ["\n\r\nfirst\n", "second"], (ends.messages, ends.closes)
        finally:
            client.drop()
            server.stop.set()


# -- finding 5: a message in 16k one-byte fragments ----------------------------------------------------


def one_byte_fragments(count: int) -> bytes:
    """One text message in `count` one-byte frames: "a" (not final), continuations "b", a final
    continuation "c"; 3 bytes a frame on the wire."""
    return bytes([0x01, 1]) + b"a" + (bytes([0x00, 1]) + b"b") * (count - 2) + bytes([0x80, 1]) + b"c"


def fragments_run(ends: Ends, frames: bytes) -> tuple[float, PeakRss]:
    """Send `frames` to a connected client at once; the CPU seconds this process spent until the
    message or a close came (within 20 s), and how far it grew."""
    go = threading.Event()

    def fragments(conn: socket.socket, stop: threading.Event) -> None:
        upgrade(conn)
        go.wait(5)
        conn.sendall(frames)
        stop.wait(10)

    with Hostile(fragments) as server, PeakRss() as rss:
        client = transport(ends, timeout=2.0)
        client.connect(server.url)
        try:
            cpu = time.process_time()
            go.set()
            wait_until(lambda: bool(ends.messages or ends.closes), 20.0)
            cpu = time.process_time() - cpu
        finally:
            client.drop()
            server.stop.set()
    return cpu, rss


def test_a_message_in_16k_one_byte_fragments_arrives_in_well_under_a_second_of_cpu(ends: Ends) -> None:
    """16k fragments (48 KiB on the wire) used to cost 5 s of CPU (a sum over all fragments on each
    new one): now under 0.5 s (measured: ~0.1 s) and under 16 MiB of growth (measured: ~0 MiB)."""
    count = 16 * 1024
    cpu, rss = fragments_run(ends, one_byte_fragments(count))
    assert ends.messages == ["a" + "b" * (count - 2) + "c"], ends.closes
    assert cpu < 0.5, f"{cpu:.2f}s of CPU for {count} fragments"
    assert_grew_under(rss, 16 * MIB)


def test_a_message_in_more_fragments_than_the_cap_fails_with_a_named_close(ends: Ends) -> None:
    """Past MAX_FRAGMENTS each one-byte fragment would cost a list entry and an object: the client
    stops at the cap with 1009 naming it, in CPU linear in the fragments (under 2 s, measured:
    ~0.5 s; quadratic would be over a minute) and under 16 MiB of growth (measured: ~0.4 MiB),
    and delivers nothing."""
    cpu, rss = fragments_run(ends, one_byte_fragments(MAX_FRAGMENTS + 1))
    assert ends.messages == [], "a message past the fragment cap was delivered"
    assert len(ends.closes) == 1, "no close within 20 s"
    code, reason, initiator = ends.closes[0]
    assert (code, initiator) == (1009, "client"), ends.closes
    assert f"a message in over {MAX_FRAGMENTS} fragments" in reason, reason
    assert cpu < 2.0, f"{cpu:.2f}s of CPU for {MAX_FRAGMENTS + 1} fragments"
    assert_grew_under(rss, 16 * MIB)


def test_a_server_that_hangs_up_while_a_send_waits_for_room_fails_the_send_not_the_process(ends: Ends) -> None:
    """The user's send parks on a write watcher; the server's EOF makes the receive path close the
    socket under it. libev aborts the whole process when a watcher is left on a closed descriptor:
    the wait must end first, and the send fail with the connection's end."""
    sending = threading.Event()

    def hang_up(conn: socket.socket, stop: threading.Event) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        upgrade(conn)
        sending.wait(5)
        time.sleep(0.3)  # the send is parked by now
        conn.shutdown(socket.SHUT_WR)  # EOF to the client; reads nothing, ever
        stop.wait(5)

    with Hostile(hang_up, recv_buffer=4096) as server:
        client = transport(ends, timeout=3.0)
        client.connect(server.url)
        try:
            sending.set()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                for _ in range(64):  # far more than the socket buffers take
                    client.send(b"y" * (1024 * 1024))
            assert time.monotonic() - started < 2.5, "the send waited out its timeout"
            assert ends.closes == [(None, "", "abrupt")] and client.state is State.CLOSED
        finally:
            client.drop()
            server.stop.set()
