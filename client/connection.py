"""ProtocolClient: one WebSocket connection speaking docs/protocol.md.

Synchronous API over websocket-client with one background receive loop per
connection. It only uses `threading`/`socket` primitives, which gevent patches, so
the same code runs in plain threads (tests) and in Locust greenlets. Every wait
has a timeout.

Why a hand-written receive loop: websocket-client answers pings inside recv(),
but heartbeat tests need a client that can stop answering, and the history
recorder wants every ping, so frames are read with `recv_frame()` and control
frames are handled here.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import logging
import os
import queue
import secrets
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring
from json.scanner import make_scanner
from time import perf_counter
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from websocket import (
    ABNF,
    WebSocket,
    WebSocketAddressException,
    WebSocketBadStatusException,
    WebSocketException,
    WebSocketTimeoutException,
)

from client.errors import ConnectionClosed, HandshakeRejected, ProtocolError, SocketproofError, Timeout
from client.tokens import mint_token

log = logging.getLogger(__name__)

REQUEST_TYPE = "WS"
"""Locust `request_type` of everything this client reports."""

CLOSE_WAIT = 2.0
"""How long close() waits for the server's close frame before ending TCP itself."""

INBOX_LIMIT = 10_000
"""Unread pushes kept; beyond it the oldest is dropped and counted in `pushes_dropped`
(so a Locust user that never reads pushes cannot grow without bound)."""

PING_TIMES_LIMIT = 64
"""Server ping times kept per connection (enough to measure intervals; ~2 KB, not ~32 KB)."""

_TEXT, _BINARY, _CONT = ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT
_CLOSE, _PING, _PONG = ABNF.OPCODE_CLOSE, ABNF.OPCODE_PING, ABNF.OPCODE_PONG
_PUSH_ONLY = frozenset({"message", "patch"})  # their `id` is the sender's, never a reply
RECV_SIZE = 16384
"""Bytes asked of the socket per read by the receive loop (websocket-client's own cap)."""

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_slow_dumps = _encoder.encode
_encode = (
    c_make_encoder(None, _encoder.default, encode_basestring, None, ":", ",", False, False, True)
    if c_make_encoder is not None
    else None
)
_scan = make_scanner(json.JSONDecoder())


def _dumps(msg: Any) -> str:
    """`_slow_dumps(msg)` without JSONEncoder.iterencode's per-call setup (the per-request path)."""
    if _encode is None:
        return _slow_dumps(msg)
    try:
        return "".join(_encode(msg, 0))
    except RecursionError:  # circular (no markers here): let the stdlib say so, with its ValueError
        return _slow_dumps(msg)


_NATIVE = sys.byteorder
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack


def _text_frame(text: str) -> bytes:
    """The bytes websocket-client's `ws.send(text)` writes: a final, masked text frame
    (fresh os.urandom mask key), built without its ABNF object and array copies."""
    payload = text.encode("utf-8")
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = _LEN16(0x81, 0xFE, n)
    else:
        header = _LEN64(0x81, 0xFF, n)
    mask = int.from_bytes(key * (n // 4) + key[: n % 4], _NATIVE)
    return header + key + (int.from_bytes(payload, _NATIVE) ^ mask).to_bytes(n, _NATIVE)


def _send_text(ws: WebSocket, text: str) -> None:
    """`ws.send(text)` (same frame, same lock, same exceptions), cheaper per message."""
    if ws.get_mask_key:  # a custom mask source: websocket-client's own path honours it
        ws.send(text)
        return
    data = _text_frame(text)
    with ws.lock:
        while data:
            data = data[ws._send(data) :]


def _loads(data: bytes) -> Any:
    """`json.loads(data)`; a UTF-8 `{...}` frame (all of them, normally) skips the encoding detection."""
    try:
        text = data.decode("utf-8")
        if text[:1] == "{":
            obj, end = _scan(text, 0)
            if end == len(text):
                return obj
    except (ValueError, StopIteration):
        pass  # json.loads below raises its own error (or accepts what the fast path does not)
    return json.loads(data)


class RecorderHooks(Protocol):
    """What the client calls on `recorder` (client/recorder.py implements it)."""

    def opened(self, welcome: dict[str, Any], requested_last_seq: int | None, t: float) -> None: ...
    def sent(self, msg: dict[str, Any], t: float) -> None: ...
    def received(self, msg: dict[str, Any], t: float) -> None: ...
    def server_ping(self, t: float) -> None: ...
    def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None: ...


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True)
class Session:
    """What a connection starts with (protocol section 2)."""

    welcome: dict[str, Any]
    snapshot: dict[str, Any]
    replayed: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class HandshakeResponse:
    """The 101 answer; `headers` keys are lower case (e.g. `sec-websocket-accept`)."""

    status: int
    headers: dict[str, str]


def normalize_url(url: str) -> str:
    """Accept ws/wss/http/https; a bare host (Locust's --host) gets the `/ws` path."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a ws://, wss://, http:// or https:// URL: {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _with_query(url: str, params: dict[str, Any]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _parse_close(data: bytes) -> tuple[int | None, str]:
    if len(data) < 2:
        return None, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", errors="replace")


class _Slot:
    """One pending request: a lock held until the receive loop hands over the reply
    (cheaper than an Event). For plain threads; see _GreenSlot for gevent."""

    __slots__ = ("lock", "reply", "error", "t_recv", "length")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.reply: dict[str, Any] | None = None
        self.error: SocketproofError | None = None
        self.t_recv = 0.0
        self.length = 0

    def wait(self, timeout: float) -> bool:
        """True once released (reply or error set), False after `timeout` seconds."""
        return self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        """Wake the waiter (once: a second call raises RuntimeError)."""
        self.lock.release()


class _GreenSlot:
    """A pending request under gevent (Locust): the waiting greenlet parks in the hub with
    one raw loop timer, and `release()` schedules its wake-up. Same contract as _Slot, but
    no semaphore and no gevent.Timeout per request: this is the per-message path of every
    Locust user. Used only from the hub's own thread (gevent sockets are too)."""

    __slots__ = ("reply", "error", "t_recv", "length", "_hub", "_owner", "_greenlet", "_released")

    def __init__(self, hub: Any, owner: Any) -> None:
        self.reply: dict[str, Any] | None = None
        self.error: SocketproofError | None = None
        self.t_recv = 0.0
        self.length = 0
        self._hub = hub
        self._owner = owner  # the requesting greenlet
        self._greenlet: Any = None  # the owner, only while it waits
        self._released = False

    def wait(self, timeout: float) -> bool:
        if self._released:
            return True
        if timeout < 0:  # what threading's (and gevent's) Lock.acquire says
            raise ValueError("timeout value must be strictly positive")
        if timeout > threading.TIMEOUT_MAX:
            raise OverflowError("timeout value is too large")
        hub = self._hub
        greenlet = self._greenlet = self._owner
        timer = hub.loop.timer(timeout)
        timer.start(greenlet.switch, False)
        try:
            return hub.switch()  # True from _wake(), False from the timer
        finally:
            timer.close()
            self._greenlet = None

    def release(self) -> None:
        if self._released:
            raise RuntimeError("release unlocked lock")  # as _Slot does
        self._released = True
        if self._greenlet is not None:
            self._hub.loop.run_callback(self._wake)

    def _wake(self) -> None:
        greenlet = self._greenlet
        if greenlet is not None:  # still waiting (not timed out or killed meanwhile)
            greenlet.switch(True)


def _gevent_patched() -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    """(get_hub, getcurrent) when gevent has monkey-patched `threading` (Locust), else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    from gevent import get_hub, getcurrent

    return get_hub, getcurrent


class _FrameReader:
    """Reads the server's frames for the receive loop: one socket read per burst, where
    websocket-client's frame_buffer makes three or more small reads per frame.

    `read()` returns the payload (bytes) of a final, unmasked text frame with no RSV
    bits, which is every protocol reply, and any other frame as the ABNF object
    websocket-client would have built and validated. A read that times out keeps the
    partial frame, as websocket-client does.
    """

    __slots__ = ("_recv", "_buf", "_skip_utf8")

    def __init__(self, recv: Callable[[int], bytes], buffered: bytes = b"", skip_utf8_validation: bool = True) -> None:
        """`recv(n)` is `ws._recv`: raises websocket-client's timeout and closed exceptions
        (and closes the socket on EOF), as the frame_buffer's reads do."""
        self._recv = recv
        self._buf = bytearray(buffered)
        self._skip_utf8 = skip_utf8_validation

    @classmethod
    def of(cls, ws: WebSocket) -> _FrameReader:
        """Take over reading `ws` (and whatever its frame_buffer had read ahead, normally nothing)."""
        fb = ws.frame_buffer
        buffered = b"".join(fb.recv_buffer)
        fb.recv_buffer = []
        return cls(ws._recv, buffered, fb.skip_utf8_validation)

    def read(self) -> bytes | ABNF:
        buf = self._buf
        recv = self._recv
        while True:
            n = len(buf)
            if n >= 2:
                b2 = buf[1]
                length = b2 & 0x7F
                pos = 2
                if length >= 126:
                    pos = 4 if length == 126 else 10
                    length = int.from_bytes(buf[2:pos], "big") if n >= pos else n
                if b2 & 0x80:
                    pos += 4
                end = pos + length
                if n >= end:
                    if buf[0] == 0x81 and not b2 & 0x80:
                        payload = bytes(buf[pos:end])
                        del buf[:end]
                        return payload
                    return self._frame(buf, pos, end)
            buf += recv(RECV_SIZE)

    def _frame(self, buf: bytearray, pos: int, end: int) -> ABNF:
        b1, b2 = buf[0], buf[1]
        has_mask = b2 >> 7 & 1
        payload = bytes(buf[pos:end])
        if has_mask:  # servers must not mask (RFC 6455 5.1), but websocket-client unmasks
            payload = ABNF.mask(bytes(buf[pos - 4 : pos]), payload)
        del buf[:end]
        frame = ABNF(b1 >> 7 & 1, b1 >> 6 & 1, b1 >> 5 & 1, b1 >> 4 & 1, b1 & 0xF, has_mask, payload)
        frame.validate(self._skip_utf8)
        return frame


_CLOSED_MARK: dict[str, Any] = {"type": "_closed"}  # wakes next_push() when the connection ends


class ProtocolClient:
    """One client connection; `connect()` again after it closed to reconnect (e.g. resume)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        recorder: RecorderHooks | None = None,
        request_event: Any = None,
        timeout: float = 10.0,
        user: str | None = None,
        label: str | None = None,
        on_push: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`user` is the user id this client acts as: with no `token`, one is minted for it
        (default secret). `label` names the client in Locust's request context.
        `request_event` is Locust's `environment.events.request` (None: report nothing)."""
        self.url = normalize_url(url)
        self.token = token if token is not None or user is None else mint_token(None, user)
        self.headers = dict(headers or {})
        self.recorder = recorder
        self.request_event = request_event
        self.timeout = timeout
        self.label = label or user or "client"
        self.on_push = on_push
        self.answer_pings = True
        """Set False to stop answering server ping frames (heartbeat tests)."""
        self.ping_times: deque[float] = deque(maxlen=PING_TIMES_LIMIT)
        """time.time() of each server ping frame, newest last."""
        self.pushes_dropped = 0
        self.handshake_response: HandshakeResponse | None = None
        self.session: Session | None = None
        self._user = user
        self._context = {"label": self.label}
        self._prefix = secrets.token_hex(4) + "-"
        self._ids = itertools.count(1)
        self._pending: dict[Any, _Slot | _GreenSlot] = {}
        self._green = _gevent_patched()
        self._inbox: queue.Queue[dict[str, Any]] | None = None  # made on first use: see _box()
        self._lock = threading.Lock()  # state changes only, never the per-message path
        self._state = State.CLOSED
        self._ws: WebSocket | None = None
        self._closed_evt = threading.Event()
        self._closed_evt.set()
        self._close_info = ConnectionClosed(None, "not connected")
        self._recorded_open = False  # recorder.closed() only follows a recorder.opened()

    # ------------------------------------------------------------------ properties

    @property
    def state(self) -> State:
        return self._state

    @property
    def welcome(self) -> dict[str, Any] | None:
        return self.session.welcome if self.session else None

    @property
    def conn_id(self) -> Any:
        return self.session.welcome.get("conn_id") if self.session else None

    @property
    def user(self) -> str | None:
        """The user id the server assigned (welcome), else the one given to __init__."""
        if self.session is not None and "user" in self.session.welcome:
            return self.session.welcome["user"]
        return self._user

    def next_id(self) -> str:
        """A request id unique to this client (random prefix + counter: cheap and
        distinct across clients, so message ids can identify a send in histories)."""
        return f"{self._prefix}{next(self._ids)}"

    # ------------------------------------------------------------------ connect

    def connect(
        self,
        last_seq: int | None = None,
        *,
        query: dict[str, Any] | None = None,
        origin: str | None = None,
    ) -> Session:
        """Handshake, read welcome + snapshot + replay, then start the receive loop.

        Raises HandshakeRejected (HTTP refusal or nothing to talk to), Timeout,
        ConnectionClosed (closed during the welcome) or ProtocolError (the first
        frames are not welcome/snapshot). No Origin header is sent unless `origin`
        is given. `query` adds raw query parameters (e.g. `token`, a bad `last_seq`).
        """
        with self._lock:
            if self._state is not State.CLOSED:
                raise SocketproofError(f"connect() while {self._state.value}")
            self._state = State.CONNECTING
            self._ws = None  # a late _finish() of the old receive loop must not touch the new socket
            self._closed_evt.clear()
        params: dict[str, Any] = {}
        if last_seq is not None:
            params["last_seq"] = last_seq
        params.update(query or {})
        header = dict(self.headers)
        if self.token is not None:
            header["Authorization"] = f"Bearer {self.token}"
        t0 = perf_counter()
        length = 0
        try:
            ws = self._open(_with_query(self.url, params), header, origin)
            self._ws = ws
            session, length = self._read_start(ws, last_seq, t0 + self.timeout)
        except SocketproofError as exc:
            with self._lock:
                self._state = State.CLOSED
                self._close_info = exc if isinstance(exc, ConnectionClosed) else ConnectionClosed(None, str(exc))
            self._closed_evt.set()
            self._fire("connect", t0, 0, None, exc)
            raise
        self.session = session
        ws.settimeout(self.timeout)
        with self._lock:
            self._state = State.OPEN
        threading.Thread(target=self._run, args=(ws,), name=f"socketproof-recv-{self.label}", daemon=True).start()
        self._fire("connect", t0, length, session.welcome, None)
        return session

    def _open(self, url: str, header: dict[str, str], origin: str | None) -> WebSocket:
        ws = WebSocket(skip_utf8_validation=True)  # json.loads rejects bad UTF-8 anyway
        try:
            ws.connect(
                url,
                header=header,
                timeout=self.timeout,
                origin=origin,
                suppress_origin=origin is None,
                redirect_limit=0,
            )
        except WebSocketBadStatusException as exc:
            raise HandshakeRejected.from_response(exc.status_code, exc.resp_body, exc.resp_headers) from None
        except (WebSocketTimeoutException, TimeoutError) as exc:
            raise Timeout(f"handshake with {url}: {exc}") from None
        except (WebSocketAddressException, ConnectionRefusedError) as exc:
            raise HandshakeRejected(0, "unreachable", f"{url}: {exc}") from None
        except WebSocketException as exc:
            status = 101 if "Invalid WebSocket Header" in str(exc) else 0
            raise HandshakeRejected(status, "not_websocket", f"{url}: {exc}") from None
        except OSError as exc:
            code = "not_websocket" if isinstance(exc, ConnectionResetError) else "unreachable"
            raise HandshakeRejected(0, code, f"{url}: {exc}") from None
        status, headers = ws.status, ws.headers
        self.handshake_response = HandshakeResponse(int(status or 0), dict(headers or {}))
        return ws

    def _read_start(self, ws: WebSocket, last_seq: int | None, deadline: float) -> tuple[Session, int]:
        """Read welcome, snapshot and `replay` messages in the caller's thread."""
        try:
            welcome, length = self._read_startup_frame(ws, deadline)
            if welcome.get("type") != "welcome":
                raise self._unexpected("welcome", welcome)
            if self.recorder is not None:
                self._recorded_open = True
                self.recorder.opened(welcome, last_seq, time.time())
                self.recorder.received(welcome, time.time())
            snapshot, n = self._read_startup_frame(ws, deadline)
            length += n
            self._record_received(snapshot)
            if snapshot.get("type") != "snapshot":
                raise self._unexpected("snapshot", snapshot)
            replayed: list[dict[str, Any]] = []
            expected = welcome.get("replay") or 0
            while len(replayed) < expected:
                msg, n = self._read_startup_frame(ws, deadline)
                length += n
                self._record_received(msg)
                if msg.get("type") == "message":
                    replayed.append(msg)
                else:
                    self._push(msg)  # not part of the replay, but nothing is dropped
            return Session(welcome, snapshot, replayed), length
        except ConnectionClosed:
            raise
        except SocketproofError as exc:
            self._finish(ws, None, str(exc), "abrupt")
            self._abort_socket(ws)
            raise

    def _unexpected(self, wanted: str, msg: dict[str, Any]) -> ProtocolError:
        if msg.get("type") == "error":
            return ProtocolError.from_frame(msg)
        return ProtocolError("unexpected_frame", f"expected {wanted}, got {msg.get('type')!r}", msg)

    def _read_startup_frame(self, ws: WebSocket, deadline: float) -> tuple[dict[str, Any], int]:
        while True:
            remaining = deadline - perf_counter()
            if remaining <= 0:
                raise Timeout("waiting for welcome/snapshot/replay")
            ws.settimeout(remaining)
            try:
                frame = ws.recv_frame()
            except WebSocketTimeoutException:
                continue
            except (WebSocketException, OSError):
                self._finish(ws, None, "", "abrupt")
                raise self._close_info from None
            op = frame.opcode
            if op == _TEXT or op == _BINARY or op == _CONT:
                data = self._assemble(ws, frame)
                if data is not None:
                    return self._decode(data[0], data[1]), len(data[1])
            elif op == _PING:
                self._on_ping(ws, frame.data)
            elif op == _CLOSE:
                self._on_close_frame(ws, frame.data)
                raise self._close_info

    # ------------------------------------------------------------------ receive loop

    def _run(self, ws: WebSocket) -> None:
        """Read frames until the connection ends; wakes every `timeout` to notice a reconnect."""
        read = _FrameReader.of(ws).read
        dispatch = self._dispatch
        try:
            while True:
                try:
                    frame = read()
                except WebSocketTimeoutException:
                    if ws is not self._ws or self._state is State.CLOSED:
                        return
                    continue
                t_recv = perf_counter()
                if frame.__class__ is bytes:  # a whole text frame: the common case
                    dispatch(frame, t_recv)
                    continue
                op = frame.opcode
                if op == _TEXT and frame.fin:
                    dispatch(frame.data, t_recv)
                elif op == _PING:
                    self._on_ping(ws, frame.data)
                elif op == _CLOSE:
                    self._on_close_frame(ws, frame.data)
                    return
                elif op != _PONG:
                    data = self._assemble(ws, frame)
                    if data is not None:
                        if data[0] == _TEXT:
                            self._dispatch(data[1], t_recv)
                        else:
                            self._push_recorded(self._decode(data[0], data[1]))
        except (WebSocketException, OSError, ValueError):
            self._finish(ws, None, "", "abrupt")
        except Exception:  # a bug here must not leave requests waiting forever
            log.exception("socketproof client %s: receive loop failed", self.label)
            self._finish(ws, None, "", "abrupt")
            self._abort_socket(ws)

    @staticmethod
    def _assemble(ws: WebSocket, frame: ABNF) -> tuple[int, bytes] | None:
        cont = ws.cont_frame
        cont.validate(frame)
        cont.add(frame)
        if not cont.is_fire(frame):
            return None
        opcode, whole = cont.extract(frame)
        return opcode, whole.data

    @staticmethod
    def _decode(opcode: int, data: bytes) -> dict[str, Any]:
        """Protocol frames are JSON objects; anything else becomes a `_invalid` pseudo-frame."""
        if opcode == _TEXT:
            try:
                msg = _loads(data)
            except ValueError:
                msg = None
            if isinstance(msg, dict):
                return msg
        raw = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        return {"type": "_invalid", "binary": opcode != _TEXT, "raw": raw}

    def _dispatch(self, data: bytes, t_recv: float) -> None:
        """Hand a reply to its waiting request, or put a push on the inbox."""
        try:
            msg = _loads(data)
        except ValueError:
            msg = None
        if msg.__class__ is not dict:
            msg = self._decode(_TEXT, data)
        recorder = self.recorder
        if recorder is not None:
            recorder.received(msg, time.time())
        if msg.get("type") not in _PUSH_ONLY:
            mid = msg.get("id")
            if mid is not None:
                try:
                    slot = self._pending.pop(mid, None)
                except TypeError:  # an unhashable id cannot be one of ours
                    slot = None
                if slot is not None:
                    slot.reply = msg
                    slot.t_recv = t_recv
                    slot.length = len(data)
                    slot.release()
                    return
        self._push(msg)

    def _record_received(self, msg: dict[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder.received(msg, time.time())

    def _push_recorded(self, msg: dict[str, Any]) -> None:
        self._record_received(msg)
        self._push(msg)

    def _box(self) -> queue.Queue[dict[str, Any]]:
        """The inbox, made on first use: a client whose pushes go to `on_push` (every Locust
        user's) needs none while open, and a Queue is ~2.6 KB per idle connection."""
        inbox = self._inbox
        if inbox is None:
            with self._lock:  # never held by a caller of _box()
                inbox = self._inbox
                if inbox is None:
                    inbox = self._inbox = queue.Queue()
        return inbox

    def _push(self, msg: dict[str, Any]) -> None:
        on_push = self.on_push
        if on_push is not None:
            try:
                on_push(msg)
            except Exception:
                log.exception("socketproof client %s: on_push failed", self.label)
            return
        inbox = self._box()
        if inbox.qsize() >= INBOX_LIMIT:
            try:
                inbox.get_nowait()
                self.pushes_dropped += 1
            except queue.Empty:
                pass
        inbox.put_nowait(msg)

    def _on_ping(self, ws: WebSocket, payload: bytes) -> None:
        t = time.time()
        self.ping_times.append(t)
        if self.recorder is not None:
            self.recorder.server_ping(t)
        if self.answer_pings:
            try:
                ws.pong(payload)
            except (WebSocketException, OSError):
                pass  # the read side will notice the broken connection

    def _on_close_frame(self, ws: WebSocket, payload: bytes) -> None:
        """Finish the close handshake: echo the code when the server started it (RFC 6455 5.5.1)."""
        code, reason = _parse_close(payload)
        initiator = "client" if self._state is State.CLOSING else "server"
        if initiator == "server":
            try:
                if code is None:
                    ws.send(b"", _CLOSE)
                else:
                    ws.send_close(code)
            except (WebSocketException, OSError, ValueError):
                pass
        self._finish(ws, code, reason, initiator)
        self._abort_socket(ws)

    def _finish(self, ws: WebSocket, code: int | None, reason: str, initiator: str) -> None:
        """Mark the connection closed once: record it, fail pending requests, wake waiters."""
        with self._lock:
            if ws is not self._ws or self._state is State.CLOSED:
                return
            self._state = State.CLOSED
            info = self._close_info = ConnectionClosed(code, reason)
            pending = list(self._pending.values())
            self._pending.clear()
        if self.recorder is not None and self._recorded_open:
            self._recorded_open = False
            self.recorder.closed(code, reason, initiator, time.time())
        for slot in pending:
            slot.error = info
            try:
                slot.release()
            except RuntimeError:
                pass
        self._box().put_nowait(_CLOSED_MARK)
        self._closed_evt.set()

    @staticmethod
    def _abort_socket(ws: WebSocket) -> None:
        sock = ws.sock
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

    # ------------------------------------------------------------------ requests

    def request(
        self,
        msg: dict[str, Any],
        timeout: float | None = None,
        *,
        name: str | None = None,
        expected_errors: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Send `msg` and wait for the reply with its `id` (one is assigned when missing).

        Raises ProtocolError for an `error` reply, Timeout, or ConnectionClosed. Fires
        Locust's request event (name = message type unless `name`) when configured.
        An error whose code is in `expected_errors` is a normal answer (e.g. a
        `version_conflict` that the caller resolves): it is returned, not raised,
        and counts as a success.
        """
        mid = msg.get("id")
        if mid is None:
            msg = {**msg, "id": f"{self._prefix}{next(self._ids)}"}
            mid = msg["id"]
        pending = self._pending
        if mid in pending:
            raise ValueError(f"request id {mid!r} is already pending")
        green = self._green
        if green is None:
            slot: _Slot | _GreenSlot = _Slot()
        else:
            hub, current = green[0](), green[1]()
            slot = _GreenSlot(hub, current) if current is not hub else _Slot()
        pending[mid] = slot
        t0 = perf_counter()
        if self._state is not State.OPEN:  # checked after registering: _finish() can't miss us
            pending.pop(mid, None)
            return self._failed(msg, name, t0, self._not_open())
        data = _dumps(msg)
        recorder = self.recorder
        if recorder is not None:
            recorder.sent(msg, time.time())
        try:
            _send_text(self._ws, data)  # type: ignore[arg-type]
        except WebSocketTimeoutException:
            pending.pop(mid, None)
            return self._failed(msg, name, t0, Timeout(f"sending {msg.get('type')!r}"))
        except (WebSocketException, OSError, AttributeError):
            pending.pop(mid, None)
            return self._failed(
                msg,
                name,
                t0,
                self._not_open() if self._state is not State.OPEN else ConnectionClosed(None, "send failed"),
            )
        if not slot.wait(self.timeout if timeout is None else timeout):
            if pending.pop(mid, None) is not None or not slot.wait(1.0):
                return self._failed(msg, name, t0, Timeout(f"no reply to {msg.get('type')!r} id={mid!r}"))
        reply = slot.reply
        if reply is None:
            return self._failed(msg, name, t0, slot.error or ConnectionClosed(None, ""))
        exc = None
        if reply.get("type") == "error" and reply.get("code") not in expected_errors:
            exc = ProtocolError.from_frame(reply)
        event = self.request_event
        if event is not None:
            event.fire(
                request_type=REQUEST_TYPE,
                name=name or msg.get("type", "?"),
                response_time=(slot.t_recv - t0) * 1000.0,
                response_length=slot.length,
                response=reply,
                exception=exc,
                context=self._context,
            )
        if exc is not None:
            raise exc
        return reply

    def _failed(self, msg: dict[str, Any], name: str | None, t0: float, exc: SocketproofError) -> Any:
        self._fire(name or str(msg.get("type", "?")), t0, 0, None, exc)
        raise exc

    def _fire(self, name: str, t0: float, length: int, response: Any, exc: BaseException | None) -> None:
        event = self.request_event
        if event is not None:
            event.fire(
                request_type=REQUEST_TYPE,
                name=name,
                response_time=(perf_counter() - t0) * 1000.0,
                response_length=length,
                response=response,
                exception=exc,
                context=self._context,
            )

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """Application-level ping -> pong (section 3)."""
        return self.request({"type": "ping"}, timeout)

    def echo(self, data: Any, timeout: float | None = None) -> dict[str, Any]:
        """The cheapest round trip (section 4)."""
        return self.request({"type": "echo", "data": data}, timeout)

    def send(self, to: str, data: Any, id: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Send to user `to`; returns the ack (`seq`, `queued`) (section 5)."""
        msg: dict[str, Any] = {"type": "send", "to": to, "data": data}
        if id is not None:
            msg["id"] = id
        return self.request(msg, timeout)

    def refresh(self, token: str, timeout: float | None = None) -> dict[str, Any]:
        """Swap the connection's token (section 7); a reconnect then uses the new one."""
        reply = self.request({"type": "refresh", "token": token}, timeout)
        self.token = token
        return reply

    def update(self, base_version: int, patch: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Patch the state document; returns the ack with the new `version` (section 8)."""
        return self.request({"type": "update", "base_version": base_version, "patch": patch}, timeout)

    def sync(self, timeout: float | None = None) -> dict[str, Any]:
        """Fetch the state document: the `snapshot` reply (section 8)."""
        return self.request({"type": "sync"}, timeout)

    # ------------------------------------------------------------------ pushes and raw frames

    def next_push(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame nobody was waiting for (message, patch, error without a pending id...).

        Raises Timeout, or ConnectionClosed once the connection is closed and the inbox is empty.
        """
        limit = self.timeout if timeout is None else timeout
        deadline = perf_counter() + limit
        while True:
            try:
                msg = self._box().get(timeout=max(0.0, deadline - perf_counter()))
            except queue.Empty:
                raise Timeout(f"no push within {limit}s") from None
            if msg is not _CLOSED_MARK:
                return msg
            if self._state is State.CLOSED:
                self._box().put_nowait(_CLOSED_MARK)  # keep it for the next caller
                raise self._close_info
            # a mark left by an earlier connection: skip it

    def drain_pushes(self) -> list[dict[str, Any]]:
        """Every push received so far, without waiting."""
        out: list[dict[str, Any]] = []
        while True:
            try:
                msg = self._box().get_nowait()
            except queue.Empty:
                return out
            if msg is not _CLOSED_MARK:
                out.append(msg)
            elif self._state is State.CLOSED:
                self._box().put_nowait(msg)
                return out

    def send_json(self, msg: dict[str, Any]) -> None:
        """Send a frame without waiting for anything; its reply (if any) lands in the inbox."""
        ws = self._require_ws()
        if self.recorder is not None:
            self.recorder.sent(msg, time.time())
        self._send(ws, _dumps(msg), _TEXT)

    def send_raw(self, data: str | bytes) -> None:
        """Send exactly `data`: str as a text frame, bytes as a binary frame (bad-input tests).
        Not recorded: it need not be a protocol message."""
        ws = self._require_ws()
        self._send(ws, data, _TEXT if isinstance(data, str) else _BINARY)

    def _require_ws(self) -> WebSocket:
        ws = self._ws
        if ws is None or self._state is not State.OPEN:
            raise self._not_open()
        return ws

    def _not_open(self) -> ConnectionClosed:
        if self._state is State.CLOSED:
            return self._close_info
        return ConnectionClosed(None, f"connection is {self._state.value}")

    @staticmethod
    def _send(ws: WebSocket, data: str | bytes, opcode: int) -> None:
        try:
            if opcode == _TEXT and isinstance(data, str):
                _send_text(ws, data)
            else:
                ws.send(data, opcode)
        except WebSocketTimeoutException:
            raise Timeout("send blocked") from None
        except (WebSocketException, OSError) as exc:
            raise ConnectionClosed(None, f"send failed: {exc}") from None

    # ------------------------------------------------------------------ closing

    def close(self, code: int = 1000, reason: str = "") -> ConnectionClosed:
        """Clean close: send a close frame, wait up to CLOSE_WAIT for the server's, end TCP.

        Returns what the server answered (code None when it did not answer in time).
        """
        with self._lock:
            ws = self._ws
            if ws is None or self._state is not State.OPEN:
                return self._close_info
            self._state = State.CLOSING
        try:
            ws.send_close(code, reason)
        except (WebSocketException, OSError):
            self._finish(ws, None, "", "abrupt")
        if not self._closed_evt.wait(min(CLOSE_WAIT, self.timeout)):
            self._finish(ws, None, "no close frame from the server", "client")
        self._abort_socket(ws)
        return self._close_info

    def drop(self) -> None:
        """Abrupt end: shut the TCP connection down with no close frame (a crashed client)."""
        with self._lock:
            ws = self._ws
            if ws is None or self._state is State.CLOSED:
                return
        self._finish(ws, None, "", "abrupt")
        self._abort_socket(ws)

    def wait_closed(self, timeout: float | None = None) -> ConnectionClosed:
        """Wait until the connection is closed; returns the server's code and reason
        (code None when TCP just ended). Raises Timeout when it is still open."""
        limit = self.timeout if timeout is None else timeout
        if not self._closed_evt.wait(limit):
            raise Timeout(f"connection still {self._state.value} after {limit}s")
        return self._close_info

    def __enter__(self) -> ProtocolClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._state is State.OPEN:
            self.close()
        elif self._state is not State.CLOSED:
            self.drop()

    def __repr__(self) -> str:
        return f"<ProtocolClient {self.label} {self.url} {self._state.value} conn_id={self.conn_id!r}>"
