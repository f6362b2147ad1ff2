"""One WebSocket connection that knows nothing of any message format.

Connect (URL, headers, subprotocols, origin), one receive loop, whole messages handed to
the `listener` (see `Listener`), server pings answered (or not: `answer_pings`) and timed, a clean close
(`close()`) versus an abrupt end (`drop()`), and the connection's `State`. The upgrade
is websocket-client's (client/upgrade.py bounds its time and size; it reads the response
byte by byte, so nothing after it is read ahead); from then on the raw socket is ours and
the frames go through client/framing.py.

The loop runs in a thread started with `threading`: plain threads in tests, greenlets
under Locust (gevent patches `threading` and `socket`). Every wait has a timeout.
"""

from __future__ import annotations

import _socket
import collections
import dataclasses
import enum
import logging
import os
import socket
import ssl
import threading
import time
from array import array
from collections.abc import Sequence
from time import perf_counter
from typing import Any, Protocol

from websocket import (
    WebSocketAddressException,
    WebSocketBadStatusException,
    WebSocketException,
    WebSocketTimeoutException,
)

from client.errors import ConnectionClosed, HandshakeRejected, SocketproofError, Timeout
from client.framing import BINARY, CLOSE, ENCODER, PING, TEXT, FrameDecoder, FramingError, masked_text_frame
from client.upgrade import upgrade
from client.urls import shown_url
from client.waiting import gevent_patched

log = logging.getLogger(__name__)

CLOSE_WAIT = 2.0
"""How long close() waits for the server's close frame before ending TCP itself."""
RECV_SIZE = 65536
"""Bytes asked of the socket per read."""
PING_TIMES_LIMIT = 16
"""Server ping times kept per connection: enough to see intervals (the recorder keeps the
statistics), at a quarter of the memory of 64."""
BACKLOG_LIMIT = 1024 * 1024
"""Bytes of replies (pongs, a protocol's own ping answers, a close) that the hub could not write
at once, held for a greenlet to finish; past it the server is not reading and the connection
fails (1008). Pongs do not pile up: only the latest ping needs one (RFC 6455 5.5.3)."""


_STATE_LOCK = threading.Lock()
"""Guards every transport's state moves: they never wait inside it, so one lock for all is
enough and an idle connection carries none of its own."""

_GREEN = gevent_patched()
"""(get_hub, getcurrent) under gevent (Locust), else None: read once, when this module loads."""


def _in_hub() -> bool:
    return _GREEN is not None and _GREEN[1]() is _GREEN[0]()


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True)
class HandshakeResponse:
    """The 101 answer; `headers` keys are lower case (e.g. `sec-websocket-accept`)."""

    status: int
    headers: dict[str, str]
    subprotocol: str | None = None


class Listener(Protocol):
    """Who hears what one transport receives: one object rather than three callbacks, so
    an idle connection holds one reference where bound methods would cost 64 bytes each."""

    def message_received(self, payload: str | bytes, t_recv: float) -> None:
        """Each whole message (str: text, bytes: binary) with its perf_counter() arrival."""

    def ping_received(self, t: float) -> None:
        """A server ping frame at time.time() `t` (already answered unless `answer_pings` is off)."""

    def connection_lost(self, code: int | None, reason: str, initiator: str) -> None:
        """Once, when the connection ends: close code or None, reason, who started it."""


class Transport:
    """One connection; a new Transport for each reconnect (the client keeps the rest).

    Slotted, and everything an idle connection does not need is made on demand (the
    closed event, the close info): a Locust process holds thousands of these."""

    __slots__ = ("timeout", "ssl_context", "label", "listener", "answer_pings",
                 "ping_times", "handshake_response", "_close_info", "_max", "_state", "_sock", "_watcher",
                 "_decoder", "_send_lock", "_closed_evt", "_done", "_backlog", "_ticker")

    def __init__(
        self,
        *,
        timeout: float,
        label: str,
        listener: Listener,
        max_message_bytes: int = 64 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.ssl_context = ssl_context
        """For wss://: who is trusted, which client certificate (socketproof/target/tls.py); None: the system's."""
        self.label = label
        self.listener = listener
        self.answer_pings = True
        """False: server pings go unanswered (heartbeat tests)."""
        self.ping_times: array[float] = array("d")
        """time.time() of the last PING_TIMES_LIMIT server ping frames, newest last (an array of
        doubles: 8 bytes a time, where a list of floats takes 32 and an empty deque ~600)."""
        self.handshake_response: HandshakeResponse | None = None
        self._close_info: ConnectionClosed | None = None
        self._max = max_message_bytes
        self._state = State.CLOSED
        self._sock: Any = None
        self._watcher: Any = None
        self._decoder: FrameDecoder | None = None
        self._send_lock = threading.Lock()
        self._closed_evt: Any = None  # a threading.Event, made only for someone who waits
        self._done = True  # closed and the listener told: what wait_closed() waits for
        self._backlog: _Backlog | None = None  # replies the hub could not write, while a greenlet finishes them
        self._ticker: Any = None  # the timer of every(), under gevent; None without one

    @property
    def close_info(self) -> ConnectionClosed:
        """How the connection ended (code None and a reason when there was no close frame)."""
        info = self._close_info
        return info if info is not None else ConnectionClosed(None, "not connected")

    @property
    def state(self) -> State:
        return self._state

    # -- opening -------------------------------------------------------------------

    def connect(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
    ) -> HandshakeResponse:
        """Do the upgrade. Raises HandshakeRejected (an HTTP refusal, or nothing to talk
        to) or Timeout. No Origin header is sent unless `origin` is given."""
        with _STATE_LOCK:
            if self._state is not State.CLOSED or self._sock is not None:
                raise SocketproofError(f"connect() while {self._state.value}")
            self._state = State.CONNECTING
            self._done = False
            if self._closed_evt is not None:
                self._closed_evt.clear()
        sslopt = {"context": self.ssl_context} if self.ssl_context is not None else None
        header = dict(headers or {})
        if subprotocols:  # offered as a plain header: the choice is checked below, by RFC 6455's rule
            header["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
        try:
            sock, status, answer = upgrade(url, shown_url(url), timeout=self.timeout, header=header, origin=origin,
                                           sslopt=sslopt)
        except BaseException as exc:
            self._set_closed(ConnectionClosed(None, "handshake failed"))
            raise _handshake_error(exc, url) from None
        chosen = (answer.get("sec-websocket-protocol") or "").strip() or None
        if chosen is not None and chosen not in subprotocols:
            self._set_closed(ConnectionClosed(None, "handshake failed"))
            _close_quietly(sock)
            offered = ", ".join(subprotocols) or "none"
            raise HandshakeRejected(101, "bad_subprotocol",
                                    f"{shown_url(url)}: the server chose subprotocol {chosen!r}; offered: {offered}")
        response = HandshakeResponse(status, answer, chosen)
        self.handshake_response = response
        sock.settimeout(self.timeout)
        green = self._watchable(sock)
        if green:
            sock = _bare(sock)
        with _STATE_LOCK:
            self._sock = sock
            self._state = State.OPEN
        if green:
            self._watch(sock)
        else:
            threading.Thread(target=self._run, args=(sock,), name=f"socketproof-recv-{self.label}", daemon=True).start()
        return response

    # -- a clock for the session ------------------------------------------------------

    def every(self, interval: float, callback: Any) -> None:
        """Call `callback()` every `interval` s while the connection is open (a protocol's own
        keep-alive); it ends with the connection. Under gevent a timer of the hub (no greenlet
        per connection: the callback runs in the hub and must not wait; sends from there are
        queued like pongs), else a thread that waits on the close."""
        if interval <= 0 or self._state is not State.OPEN:
            return
        if self._watcher is not None:
            timer = _GREEN[0]().loop.timer(interval, interval)  # type: ignore[index]
            self._ticker = timer
            timer.start(self._tick, callback)
            return
        threading.Thread(target=self._tick_loop, args=(interval, callback), name=f"socketproof-tick-{self.label}",
                         daemon=True).start()

    def _tick(self, callback: Any) -> None:
        if self._state is not State.OPEN:  # ended on a path that did not release: the timer goes now
            ticker, self._ticker = self._ticker, None
            if ticker is not None:
                ticker.stop()
                ticker.close()
            return
        try:
            callback()
        except Exception:  # noqa: BLE001 - a failed keep-alive must not stop the hub
            log.exception("socketproof transport %s: tick failed", self.label)

    def _tick_loop(self, interval: float, callback: Any) -> None:
        """The thread way: bounded by the connection's life (each wait ends at the close)."""
        while not self._wait_done(interval):
            self._tick(callback)

    # -- sending -------------------------------------------------------------------

    def send(self, frame: str | bytes) -> None:
        """Send one whole message: str as text, bytes as binary. Raises ConnectionClosed or Timeout."""
        sock = self._sock
        if sock is None or self._state is not State.OPEN:
            raise self.not_open()
        data = masked_text_frame(frame) if frame.__class__ is str else ENCODER.binary(frame)  # type: ignore[arg-type]
        self._write(sock, data)

    def send_ping(self, payload: bytes = b"") -> None:
        sock = self._sock
        if sock is None or self._state is not State.OPEN:
            raise self.not_open()
        self._write(sock, ENCODER.ping(payload))

    def _write(self, sock: Any, data: bytes, pong: bool = False) -> None:
        watched = self._watcher is not None
        if watched and _in_hub():
            self._write_from_hub(sock, data, pong)
            return
        try:
            with self._send_lock:
                if watched:
                    self._green_send_all(sock, data)
                else:
                    sock.sendall(data)
        except TimeoutError:
            raise Timeout("send blocked") from None
        except OSError as exc:
            if self._state is State.CLOSED:  # released while the send waited: say how it ended
                raise self.close_info from None
            raise ConnectionClosed(None, f"send failed: {exc}") from None

    def _green_send_all(self, sock: Any, data: bytes) -> None:
        """sendall() for the bare non-blocking socket of a watched connection: when the kernel
        buffer is full, this greenlet waits (up to `timeout`) for it to drain, as gevent does."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                _wait_writable(sock.fileno(), self.timeout)

    def _write_from_hub(self, sock: socket.socket, data: bytes, pong: bool) -> None:
        """A pong, a close or an adapter's reply sent from `_readable`, in the hub, which must never
        wait (gevent raises BlockingSwitchOutError there): written at once when nothing is queued
        and the socket takes it, else queued for a greenlet of its own to finish, in order."""
        backlog = self._backlog
        if backlog is not None:  # earlier replies are still waiting: this one goes after them
            self._queue(sock, backlog, data, pong)
            return
        lock = self._send_lock
        if not lock.acquire(blocking=False):  # a user greenlet is sending: queue behind it
            self._start_backlog(sock, data, pong, locked=False)
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(sock.fileno(), view):]
        except BlockingIOError:  # the lock goes with the rest of the frame
            self._start_backlog(sock, bytes(view), pong and len(view) == len(data), locked=True)
            return
        except OSError as exc:
            lock.release()
            raise ConnectionClosed(None, f"send failed: {exc}") from None
        lock.release()

    def _start_backlog(self, sock: socket.socket, data: bytes, pong: bool, locked: bool) -> None:
        backlog = self._backlog = _Backlog()
        backlog.add(data, pong)
        _spawn(self._drain, sock, backlog, locked)

    def _queue(self, sock: socket.socket, backlog: _Backlog, data: bytes, pong: bool) -> None:
        """Queue one more reply; past BACKLOG_LIMIT the server is not reading: fail the connection."""
        if not backlog.add(data, pong):
            self._abort(sock, f"over {BACKLOG_LIMIT} bytes of replies waiting: the server is not reading")
            raise self.close_info

    def _drain(self, sock: socket.socket, backlog: _Backlog, locked: bool) -> None:
        """The greenlet that finishes what the hub could not write. A server that takes nothing for
        `timeout` s fails the connection (1008): a frame half written leaves nothing to save."""
        lock = self._send_lock
        try:
            while not locked:  # a user's send holds it; each of its waits ends within `timeout`
                locked = lock.acquire(timeout=self.timeout)
                if self._state is State.CLOSED:
                    return
            frames = backlog.frames
            while frames:
                self._green_send_all(sock, backlog.take())
        except OSError as exc:  # TimeoutError too: nothing taken for `timeout` s
            if self._state is not State.CLOSED:
                self._abort(sock, f"a reply blocked for {self.timeout:g}s: the server is not reading ({exc})")
        finally:
            if self._backlog is backlog:
                self._backlog = None
            if locked:
                lock.release()

    def not_open(self) -> ConnectionClosed:
        if self._state is State.CLOSED:
            return self.close_info
        return ConnectionClosed(None, f"connection is {self._state.value}")

    # -- closing -------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> ConnectionClosed:
        """Clean close: send a close frame, wait up to CLOSE_WAIT for the server's, end TCP.
        Returns what the server answered (code None when it did not answer in time)."""
        with _STATE_LOCK:
            sock = self._sock
            if sock is None or self._state is not State.OPEN:
                return self.close_info
            self._state = State.CLOSING
        try:
            self._write(sock, ENCODER.close(code, reason))
        except SocketproofError:
            self._finish(sock, None, "", "abrupt")
        if not self._wait_done(min(CLOSE_WAIT, self.timeout)):
            self._finish(sock, None, "no close frame from the server", "client")
        self._release(sock)
        return self.close_info

    def drop(self) -> None:
        """Abrupt end: shut TCP down with no close frame (a crashed client)."""
        sock = self._sock
        if sock is None or self._state is State.CLOSED:
            return
        self._finish(sock, None, "", "abrupt")
        self._release(sock)

    def wait_closed(self, timeout: float | None = None) -> ConnectionClosed:
        """Wait until closed; returns the server's code and reason. Raises Timeout when still open."""
        limit = self.timeout if timeout is None else timeout
        if not self._wait_done(limit):
            raise Timeout(f"connection still {self._state.value} after {limit}s")
        return self.close_info

    def _wait_done(self, limit: float) -> bool:
        """Wait until closed and the listener told; the event is made only now (idle
        connections never wait, so they never carry one)."""
        with _STATE_LOCK:
            if self._done:
                return True
            event = self._closed_evt
            if event is None:
                event = self._closed_evt = threading.Event()
        return event.wait(limit)

    def _set_done(self) -> None:
        with _STATE_LOCK:
            self._done = True
            event = self._closed_evt
        if event is not None:
            event.set()

    # -- the receive loop ------------------------------------------------------------

    def _run(self, sock: socket.socket) -> None:
        """The thread (plain threads, or TLS) way: a blocking read loop of its own."""
        decoder = FrameDecoder(self._max)
        recv = sock.recv
        try:
            while True:
                try:
                    data = recv(RECV_SIZE)
                except TimeoutError:
                    if self._state is State.CLOSED:
                        return
                    continue
                if not self._consume(sock, decoder, data):
                    return
        except Exception as error:  # noqa: BLE001 - _ended() sorts it out
            self._ended(sock, error)
        finally:
            if self._state is State.CLOSED:
                self._release(sock)

    def _watchable(self, sock: Any) -> bool:
        """Whether the gevent way fits: not for TLS (its reads may need to write) nor plain
        threads; those get `_run`."""
        return _GREEN is not None and self.ssl_context is None and not hasattr(sock, "getpeercert")

    def _watch(self, sock: Any) -> None:
        """The gevent way: no greenlet per connection. A readiness watcher on the socket calls
        `_readable` in the hub when bytes arrive, which reads what is there without blocking and
        dispatches it; an idle connection costs a watcher, not a greenlet and its stack."""
        watcher = _GREEN[0]().loop.io(sock.fileno(), 1)  # type: ignore[index]
        self._watcher = watcher
        self._decoder = FrameDecoder(self._max)
        watcher.start(self._readable)

    def _readable(self) -> None:
        """Runs in gevent's hub: must never block. Reads at most a few chunks per wake-up."""
        sock, decoder = self._sock, self._decoder
        if sock is None or decoder is None:
            return
        try:
            for _ in range(4):
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    return
                if not self._consume(sock, decoder, data):
                    self._release(sock)
                    return
        except Exception as error:  # noqa: BLE001 - _ended() sorts it out
            try:
                self._ended(sock, error)
            finally:  # whatever happened: never a watcher left on a connection nobody reads
                self._release(sock)

    def _consume(self, sock: socket.socket, decoder: FrameDecoder, data: bytes) -> bool:
        """Hand over what `data` completes; False once the connection ended (EOF or close frame)."""
        if not data:
            self._finish(sock, None, "", "abrupt")
            return False
        t_recv = perf_counter()
        try:
            messages = decoder.feed(data)
            failed = None
        except FramingError as error:  # what came before the bad frame still counts
            messages, failed = error.messages, error
        message_received = self.listener.message_received
        for kind, payload in messages:
            if kind is TEXT or kind is BINARY:
                message_received(payload, t_recv)  # type: ignore[arg-type]
            elif kind is PING:
                self._on_ping(sock, payload)  # type: ignore[arg-type]
            elif kind is CLOSE:
                self._on_close_frame(sock, *payload)  # type: ignore[misc]
                return False
        if failed is not None:
            raise failed
        return self._state is not State.CLOSED

    def _ended(self, sock: socket.socket, error: BaseException) -> None:
        """What ended a read: a protocol violation (close with its code), the network, or a bug."""
        if isinstance(error, FramingError):
            self._fail(sock, error.code, error.reason)
        elif isinstance(error, OSError):
            self._finish(sock, None, "", "abrupt")
        elif isinstance(error, SocketproofError) and self._state is State.CLOSED:
            pass  # a handler's reply found the connection failed (e.g. past BACKLOG_LIMIT): ended already
        else:  # a bug in a handler must not leave requests waiting forever
            log.error("socketproof transport %s: receive failed", self.label, exc_info=error)
            self._fail(sock, 1011, "client error")

    def _on_ping(self, sock: socket.socket, payload: bytes) -> None:
        t = time.time()
        self.note_ping(t)
        self.listener.ping_received(t)
        if self.answer_pings:
            try:
                self._write(sock, ENCODER.pong(payload), pong=True)
            except SocketproofError:
                pass  # the read side will notice the broken connection

    def note_ping(self, t: float) -> None:
        """A sign of life from the server at `t`: a ping frame, or the protocol's own heartbeat."""
        times = self.ping_times
        times.append(t)
        if len(times) > PING_TIMES_LIMIT:
            del times[0]

    def _on_close_frame(self, sock: socket.socket, code: int | None, reason: str) -> None:
        """Finish the close handshake: echo the code when the server started it (RFC 6455 5.5.1)."""
        initiator = "client" if self._state is State.CLOSING else "server"
        if initiator == "server":
            try:
                self._write(sock, ENCODER.close(code, ""))
            except (SocketproofError, ValueError, TypeError):
                pass
        self._finish(sock, code, reason, initiator)
        self._release(sock)

    def _fail(self, sock: socket.socket, code: int, reason: str) -> None:
        """The server broke the protocol (or a handler failed): close with `code` and end TCP."""
        try:
            self._write(sock, ENCODER.close(code, reason[:100]))
        except Exception:  # noqa: BLE001 - the close frame is a courtesy; ending is not
            pass
        finally:
            self._finish(sock, code, reason, "client")
            self._release(sock)

    def _abort(self, sock: socket.socket, reason: str) -> None:
        """The server takes nothing we send: end TCP (no close frame would get through)."""
        self._finish(sock, 1008, reason, "client")
        self._release(sock)

    def _finish(self, sock: socket.socket, code: int | None, reason: str, initiator: str) -> None:
        """Mark the connection closed once and tell the listener."""
        with _STATE_LOCK:
            if sock is not self._sock or self._state is State.CLOSED:
                return
            self._state = State.CLOSED
            self._close_info = ConnectionClosed(code, reason)
        try:
            self.listener.connection_lost(code, reason, initiator)
        finally:
            self._set_done()

    def _release(self, sock: socket.socket) -> None:
        """Stop watching the socket (before its descriptor goes), then end TCP."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
            ticker.close()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()
            _end_write_wait(sock.fileno())
        self._decoder = None
        _close_quietly(sock)

    def _set_closed(self, info: ConnectionClosed) -> None:
        with _STATE_LOCK:
            self._state = State.CLOSED
            self._close_info = info
        self._set_done()


class _Backlog:
    """Replies the hub could not write, in order, and their bytes; made only when needed."""

    __slots__ = ("frames", "size", "pong")

    def __init__(self) -> None:
        self.frames: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.pong = False  # the last frame queued is a pong nobody started writing

    def add(self, data: bytes, pong: bool) -> bool:
        """Queue `data`; a pong replaces a waiting one. False, queuing nothing, past BACKLOG_LIMIT."""
        frames = self.frames
        if pong and self.pong:
            self.size += len(data) - len(frames[-1])
            frames[-1] = data
            return True
        if frames and self.size + len(data) > BACKLOG_LIMIT:
            return False
        frames.append(data)
        self.size += len(data)
        self.pong = pong
        return True

    def take(self) -> bytes:
        data = self.frames.popleft()
        self.size -= len(data)
        if not self.frames:
            self.pong = False
        return data


def _spawn(function: Any, *args: Any) -> None:
    """Start a greenlet from the hub, which must not wait for it to start (Thread.start() does)."""
    from gevent import spawn

    spawn(function, *args)


def _bare(sock: Any) -> socket.socket:
    """The OS socket under gevent's wrapper, non-blocking: a watched connection reads it in
    the hub and waits for writability itself, so the wrapper's two idle watchers go."""
    family, kind, proto = sock.family, sock.type, sock.proto
    bare = _socket.socket(family, kind, proto, fileno=sock.detach())
    bare.setblocking(False)
    return bare


class _WriteWait:
    """A send parked until its socket takes bytes again (one at a time: the send lock)."""

    __slots__ = ("watcher", "greenlet", "waiting")

    def __init__(self, watcher: Any, greenlet: Any) -> None:
        self.watcher = watcher
        self.greenlet = greenlet
        self.waiting = True

    def wake(self) -> None:
        if self.waiting:  # not woken by its own watcher or timer meanwhile
            self.greenlet.switch(True)


_WRITE_WAITS: dict[int, _WriteWait] = {}
"""Descriptor -> the send waiting on it, so `_release` can end the wait before the descriptor
goes: libev aborts the process when a watcher is left on a closed descriptor."""


def _wait_writable(fd: int, timeout: float) -> None:
    """Park this greenlet until `fd` takes bytes again (or its connection is released: the next
    send then fails); TimeoutError after `timeout` s."""
    hub = _GREEN[0]()  # type: ignore[index]
    watcher = hub.loop.io(fd, 2)
    timer = hub.loop.timer(timeout)
    current = _GREEN[1]()  # type: ignore[index]
    wait = _WRITE_WAITS[fd] = _WriteWait(watcher, current)
    try:
        watcher.start(current.switch, True)
        timer.start(current.switch, False)
        if not hub.switch():
            raise TimeoutError("send blocked")
    finally:
        wait.waiting = False
        if _WRITE_WAITS.get(fd) is wait:
            del _WRITE_WAITS[fd]
        watcher.close()
        timer.close()


def _end_write_wait(fd: int) -> None:
    """Before `fd` is closed: stop the watcher of a send waiting on it and wake that send."""
    wait = _WRITE_WAITS.pop(fd, None)
    if wait is not None:
        wait.watcher.stop()
        _GREEN[0]().loop.run_callback(wait.wake)  # type: ignore[index]


def _close_quietly(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _handshake_error(exc: BaseException, url: str) -> SocketproofError:
    """websocket-client's handshake failures, as the client's errors (the URL as shown_url)."""
    url = shown_url(url)
    if isinstance(exc, WebSocketBadStatusException):
        return HandshakeRejected.from_response(exc.status_code, exc.resp_body, exc.resp_headers)
    if isinstance(exc, (WebSocketTimeoutException, TimeoutError)):
        return Timeout(f"handshake with {url}: {exc}")
    if isinstance(exc, (WebSocketAddressException, ConnectionRefusedError)):
        return HandshakeRejected(0, "unreachable", f"{url}: {exc}")
    if isinstance(exc, WebSocketException):
        status = 101 if "Invalid WebSocket Header" in str(exc) else 0
        return HandshakeRejected(status, "not_websocket", f"{url}: {exc}")
    if isinstance(exc, OSError):
        code = "not_websocket" if isinstance(exc, ConnectionResetError) else "unreachable"
        return HandshakeRejected(0, code, f"{url}: {exc}")
    if isinstance(exc, SocketproofError):
        return exc
    return HandshakeRejected(0, "unreachable", f"{url}: {type(exc).__name__}: {exc}")
