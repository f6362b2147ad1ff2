"""The relay: gevent sockets in, wsproto framing, the fault layer in between.

Each accepted connection reads the client's HTTP head. A WebSocket upgrade is passed to the
upstream (see handshake.py) and, once the server answers 101, frames are relayed with
wsproto: the leg to the client is a server-side `FrameProtocol` (it reads masked frames and
writes unmasked ones), the leg to the server a client-side one (it re-masks). Fragmented
messages keep their frames, control frames keep their place between fragments, and each
close frame is passed on, so a close handshake started by either side completes end to end.
Anything that is not an upgrade (e.g. `GET /stats`) is relayed as plain bytes.

Frames a peer sends that break RFC 6455 are answered by the proxy as an endpoint would: a
close frame with wsproto's code (1002, 1007, ...) to that peer, and the same code to the other.

Every connection is bounded (limits.py): a message over `max_message_bytes` (after inflating)
closes both sides with 1009, each leg queues at most `queue_bytes` of data, and a peer that
takes no bytes for `write_timeout` seconds gets both TCP legs closed. Each is counted in
`counts()["limits"]` (`up:message_too_big`, `down:write_timeout`, ...) and logged.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.queue
from gevent import socket as gsocket
from gevent.server import StreamServer
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from socketproof.proxy import handshake
from socketproof.proxy.faults import DIRECTIONS, ConnectionFaults, FaultSpec, Message, Tally
from socketproof.proxy.limits import TOO_BIG_REASON, BoundedDeflate, Limits, text_size

log = logging.getLogger("socketproof.proxy")

CHUNK = 65536
HEAD_TIMEOUT = 10.0
"""Seconds a client or server may take to send its HTTP head."""
CONNECT_TIMEOUT = 5.0
CLOSE_LINGER = 5.0
"""Seconds both TCP legs may stay open after close frames went both ways."""
QUEUE_MAX = 4096
"""Frames waiting per leg before the reading side is held back (backpressure); bytes: Limits.queue_bytes."""
FAIL_GRACE = 0.2
"""Seconds the other side gets to answer the frames before a bad one, before the proxy closes it."""
TICK = 0.1
"""Seconds between checks for held messages (reorder) whose hold ran out."""


class WriteTimeout(TimeoutError):
    """A peer took no bytes for the write timeout (it stopped reading)."""


def send_within(sock: Any, data: bytes | bytearray, timeout: float) -> None:
    """sendall(), but WriteTimeout when the peer takes nothing for `timeout` seconds.

    A bound on stalls, not on the whole send: a slow reader of a large frame is fine. The
    first try does not wait (gevent's `send(..., timeout=0.0)`), so a socket with room
    costs no timer.
    """
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view, 0, 0.0)
        except BlockingIOError:
            gsocket.wait_write(sock.fileno(), timeout, WriteTimeout(f"the peer took no bytes for {timeout:g}s"))
            continue
        view = view[sent:]


@dataclasses.dataclass
class Incoming:
    """What one direction has read of the message in flight: bounded by Limits.max_message_bytes."""

    frame: list[Any] = dataclasses.field(default_factory=list)
    """Chunks of the frame being read (wsproto hands a frame over as it arrives)."""
    message: list[Any] = dataclasses.field(default_factory=list)
    """Whole frames of the message, when a message fault needs it whole."""
    frame_bytes: int = 0
    message_bytes: int = 0


class Outbound:
    """The only writer of one leg: frames are serialized and sent in queue order, each at its due time.

    Serializing in the writer keeps wsproto's per-leg state (continuation opcodes, the
    permessage-deflate context) in the order the bytes go out. The queue is bounded in frames
    (QUEUE_MAX) and in data bytes (`limits.queue_bytes`): a put waits for room, which holds
    the reading side back; a peer that stops reading ends the leg after `limits.write_timeout`.
    """

    def __init__(
        self,
        sock: Any,
        proto: FrameProtocol,
        on_close_sent: Callable[[], None],
        on_cut: Callable[[], None],
        limits: Limits,
        on_stall: Callable[[], None],
    ) -> None:
        self.sock = sock
        self.proto = proto
        self.queue: gevent.queue.Queue[tuple[str, Any, bool, float, int]] = gevent.queue.Queue(QUEUE_MAX)
        self.limits = limits
        self.queued = 0
        """Data bytes in the queue."""
        self.room = gevent.event.Event()
        self.close_sent = False
        self.broken = False
        self.done = False
        self.on_close_sent = on_close_sent
        self.on_cut = on_cut
        self.on_stall = on_stall
        self.greenlet = gevent.spawn(self._run)

    def put(self, kind: str, payload: Any = b"", fin: bool = True, due: float = 0.0, size: int = 0) -> None:
        """Queue a frame (`size` = its data bytes); waits while the queue is full unless it is empty."""
        bound = self.limits.queue_bytes
        while size and self.queued and self.queued + size > bound and not (self.broken or self.done):
            self.room.clear()
            self.room.wait()
        if not (self.broken or self.done):
            self.queued += size
            self.queue.put((kind, payload, fin, due, size))

    def end(self) -> None:
        """The connection is over: no more puts, and none left waiting for room."""
        self.done = True
        self.room.set()

    def _run(self) -> None:
        try:
            self._write()
        finally:
            self.room.set()  # a put waiting for room sees the leg is over

    def _write(self) -> None:
        raw_first = True
        while True:
            kind, payload, fin, due, size = self.queue.get()
            if size:
                self.queued -= size
                self.room.set()
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)
            if kind == "stop":
                self.done = True
                return
            if kind == "end":  # the source ended: pass its FIN on
                self.done = True
                self._shutdown()
                return
            if kind == "cut":  # cut_after: what was queued before went out, now end both legs
                self.done = True
                self.on_cut()
                return
            if self.close_sent and kind != "close":
                continue  # nothing may follow a close frame
            if kind == "data":
                data = self.proto.send_data(payload, fin)
            elif kind == "raw":  # text bytes corrupted on purpose (corrupt=P+raw): may be invalid UTF-8
                opcode = Opcode.TEXT if raw_first else Opcode.CONTINUATION
                data = self.proto._serialize_frame(opcode, payload, fin)  # noqa: SLF001 - the one way to send bad text
                raw_first = fin
            elif kind == "ping":
                data = self.proto.ping(payload)
            elif kind == "pong":
                data = self.proto.pong(payload)
            else:  # close
                if self.close_sent:
                    continue
                code, reason = payload
                data = self.proto.close(code, reason or None) if code is not None else self.proto.close()
                self.close_sent = True
            try:
                send_within(self.sock, data, self.limits.write_timeout)
            except WriteTimeout:
                self.broken = True
                self.on_stall()
                return
            except OSError:
                self.broken = True
                return
            if kind == "close":
                self.on_close_sent()

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Relay:
    """One proxied connection, from the client's first byte to both sockets closed."""

    def __init__(self, proxy: RelayServer, client: Any, index: int) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: Any = None
        self.index = index
        self.limits = proxy.limits
        self.faults = ConnectionFaults(proxy.spec, proxy.tally, proxy.seed, index)
        self.greenlets: list[Any] = []
        self.outs: dict[str, Outbound] = {}
        self.readers: dict[str, FrameProtocol] = {}
        self.sources: dict[str, Any] = {}
        self.pending: dict[str, bytes] = {}
        self.failed: set[str] = set()
        self.closed = False
        self.opened_at = time.monotonic()
        self.linger: Any = None

    # -- life -----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except (OSError, handshake.HeadError, gevent.Timeout) as error:
            log.debug("connection %d ended: %s", self.index, error)
        finally:
            self.close()

    def _run(self) -> None:
        with gevent.Timeout(HEAD_TIMEOUT):
            head, rest = read_head(self.client)
        request = handshake.parse_head(head)
        self.upstream = gsocket.create_connection(self.proxy.upstream_address, timeout=CONNECT_TIMEOUT)
        self.upstream.settimeout(None)
        for sock in (self.client, self.upstream):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if not request.is_upgrade:
            self.send(self.upstream, head + rest, "up")
            self.pipe_raw()
            return
        rewritten = handshake.rewrite_request(request, self.proxy.upstream_authority, self.proxy.spec.data_faults_on)
        if rewritten.removed:
            self.proxy.note_removed(rewritten.removed)
        self.send(self.upstream, rewritten.head.encode(), "up")
        with gevent.Timeout(HEAD_TIMEOUT):
            answer, answer_rest = read_head(self.upstream)
        response = handshake.parse_head(answer)
        self.send(self.client, answer, "down")
        if response.status != 101:
            if rest:
                self.send(self.upstream, rest, "up")
            if answer_rest:
                self.send(self.client, answer_rest, "down")
            self.pipe_raw()
            return
        self.relay_frames(handshake.accepted_deflate(response), rest, answer_rest)

    def relay_frames(self, deflate: str | None, from_client: bytes, from_server: bytes) -> None:
        limit = self.limits.max_message_bytes
        to_client = FrameProtocol(client=False, extensions=deflate_extension(deflate, limit))
        to_server = FrameProtocol(client=True, extensions=deflate_extension(deflate, limit))
        # `up` frames are read with the client-facing protocol and written with the server-facing one.
        self.readers = {"up": to_client, "down": to_server}
        self.sources = {"up": self.client, "down": self.upstream}
        self.pending = {"up": from_client, "down": from_server}
        self.outs = {
            direction: Outbound(sock, proto, self.close_sent, self.cut, self.limits,
                                functools.partial(self.stalled, direction))
            for direction, sock, proto in (("up", self.upstream, to_server), ("down", self.client, to_client))
        }
        self.proxy.tally_connection()
        pumps = [gevent.spawn(self.pump, direction) for direction in DIRECTIONS]
        self.greenlets = [*pumps, *(out.greenlet for out in self.outs.values())]
        for seconds in self.faults.timers():
            self.greenlets.append(gevent.spawn_later(seconds, self.on_time))
        if any(self.faults.buffers_messages(direction) for direction in DIRECTIONS):
            self.greenlets.append(gevent.spawn(self.tick))
        gevent.joinall(pumps)
        for out in self.outs.values():
            out.put("stop")
        gevent.joinall([out.greenlet for out in self.outs.values()], timeout=CLOSE_LINGER)

    def close(self) -> None:
        """Close both sockets and stop every greenlet of this connection (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.close()
            except OSError:
                pass
        for out in self.outs.values():
            out.end()
        current = gevent.getcurrent()
        for greenlet in [*self.greenlets, self.linger]:
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=False)
        self.proxy.relays.discard(self)

    def cut(self) -> None:
        """End both TCP connections now, with no close frame (each peer sees 1006)."""
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()

    def send(self, sock: Any, data: bytes, direction: str) -> None:
        """A write outside the frame relay (heads, plain HTTP): a stalled peer ends the connection too."""
        try:
            send_within(sock, data, self.limits.write_timeout)
        except WriteTimeout:
            self.stalled(direction)
            raise

    def stalled(self, direction: str) -> None:
        """The peer `direction` writes to took no bytes for the write timeout: close both TCP legs."""
        self.proxy.limited[f"{direction}:write_timeout"] += 1
        peer = "client" if direction == "down" else "server"
        log.warning("connection %d: the %s took no bytes for %gs (write timeout): both sides closed",
                    self.index, peer, self.limits.write_timeout)
        self.cut()

    def too_big(self, direction: str) -> None:
        """A message in `direction` went over max_message_bytes: read no more of it, 1009 to both sides."""
        if direction in self.failed:
            return
        self.failed.add(direction)
        self.proxy.limited[f"{direction}:message_too_big"] += 1
        sender = "client" if direction == "up" else "server"
        log.warning("connection %d: the %s sent a message over %d bytes (message too big): 1009 to both sides",
                    self.index, sender, self.limits.max_message_bytes)
        for out in self.outs.values():
            out.put("close", (CloseReason.MESSAGE_TOO_BIG, TOO_BIG_REASON))

    # -- frames -----------------------------------------------------------------------

    def pump(self, direction: str) -> None:
        """Read one side's bytes until it ends, turning frames into queued sends to the other side."""
        source, reader = self.sources[direction], self.readers[direction]
        data = self.pending.pop(direction, b"")
        incoming = Incoming()
        while True:
            if not data:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                if not data:
                    break
            self.proxy.flowing.wait()  # paused: hold what was read until forwarding resumes
            if self.faults.halted(direction) or direction in self.failed:
                data = b""
                continue
            reader.receive_bytes(data)
            data = b""
            try:
                for frame in reader.received_frames():
                    self.on_frame(direction, frame, incoming)
            except ParseFailed as error:
                if error.code == CloseReason.MESSAGE_TOO_BIG:  # inflating went over the bound (BoundedDeflate)
                    self.too_big(direction)
                else:
                    self.fail(direction, error)
        self.on_end(direction)

    def on_frame(self, direction: str, frame: Any, incoming: Incoming) -> None:
        if self.faults.halted(direction) or direction in self.failed:
            return
        opcode, out = frame.opcode, self.outs[direction]
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            size = text_size(frame.payload)
            if incoming.message_bytes + size > self.limits.max_message_bytes:
                incoming.frame.clear()
                incoming.message.clear()
                self.too_big(direction)
                return
            incoming.message_bytes += size
            incoming.frame_bytes += size
            incoming.frame.append(frame.payload)
            if not frame.frame_finished:
                return
            payload = ("" if opcode is Opcode.TEXT else b"").join(incoming.frame)
            size = incoming.frame_bytes
            incoming.frame.clear()
            incoming.frame_bytes = 0
            if frame.message_finished:
                incoming.message_bytes = 0
            self.data_frame(direction, opcode is Opcode.TEXT, payload, size, frame.message_finished, incoming.message)
        elif opcode in (Opcode.PING, Opcode.PONG):
            if self.faults.forward_control(direction):
                now = time.monotonic()
                out.put("ping" if opcode is Opcode.PING else "pong", frame.payload, True,
                        self.faults.pace(direction, len(frame.payload), now))
        elif opcode is Opcode.CLOSE:
            now = time.monotonic()
            for held, due in self.faults.flush(direction):
                self.send_message(direction, held, max(due, now))
            out.put("close", frame.payload, True, self.faults.pace(direction, 2, now))

    def data_frame(self, direction: str, text: bool, payload: Any, size: int, fin: bool, message: list[Any]) -> None:
        proxy, now = self.proxy, time.monotonic()
        proxy.relayed[f"{direction}:frames"] += 1
        if self.faults.buffers_messages(direction):
            message.append(payload)
            if fin:
                proxy.relayed[f"{direction}:messages"] += 1
                whole = Message(text, tuple(message))
                message.clear()
                for item, due in self.faults.on_message(direction, whole, now):
                    self.send_message(direction, item, due)
        else:
            if fin:
                proxy.relayed[f"{direction}:messages"] += 1
            self.outs[direction].put("data", payload, fin, self.faults.pace(direction, size, now), size)
        fired = self.faults.on_data_frame(direction)
        if fired and any(fault.cuts for fault in fired):
            self.outs[direction].put("cut")  # after the frames already queued

    def send_message(self, direction: str, message: Message, due: float) -> None:
        out, last = self.outs[direction], len(message.chunks) - 1
        for position, chunk in enumerate(message.chunks):
            raw = message.text and isinstance(chunk, bytes)
            size = text_size(chunk)
            out.put("raw" if raw else "data", chunk, position == last, self.faults.pace(direction, size, due), size)

    def fail(self, direction: str, error: ParseFailed) -> None:
        """A peer broke RFC 6455: read no more of it, and close the other side with wsproto's code.

        The other side's close reply then travels back to the bad peer like any close, behind
        whatever that side was still sending (an echo of the frames before the bad one), so the
        bad peer sees what it would have seen without the proxy. A side that does not reply in
        CLOSE_LINGER seconds gets the bad peer closed by the proxy itself.
        """
        self.failed.add(direction)
        code = error.code if error.code is not None else CloseReason.PROTOCOL_ERROR
        # After a short grace: a server that gets a close right behind a message may close before it answers.
        self.greenlets.append(gevent.spawn_later(FAIL_GRACE, self.outs[direction].put, "close", (code, "")))
        self.greenlets.append(gevent.spawn_later(CLOSE_LINGER, self.fail_late, direction, code, str(error)[:100]))
        log.debug("connection %d: the %s side sent a bad frame: %s", self.index, direction, error)

    def fail_late(self, direction: str, code: int, reason: str) -> None:
        self.outs["down" if direction == "up" else "up"].put("close", (code, reason))
        self.greenlets.append(gevent.spawn_later(1.0, self.cut))

    def on_end(self, direction: str) -> None:
        """The source of `direction` ended (EOF or error)."""
        if self.closed or self.faults.halted(direction):
            return  # half-open: the other side is not told
        now = time.monotonic()
        for held, due in self.faults.flush(direction):
            self.send_message(direction, held, max(due, now))
        self.outs[direction].put("end")

    def close_sent(self) -> None:
        """A close frame went out on a leg: once both have, the TCP legs get CLOSE_LINGER to end."""
        if self.linger is None and all(out.close_sent for out in self.outs.values()):
            self.linger = gevent.spawn_later(CLOSE_LINGER, self.cut)

    def on_time(self) -> None:
        for fault in self.faults.on_time(time.monotonic() - self.opened_at):
            if fault.cuts:
                self.cut()
                return

    def tick(self) -> None:
        """Release held messages whose hold ran out (a reorder with no next message)."""
        while not self.closed:
            gevent.sleep(TICK)
            now = time.monotonic()
            for direction in DIRECTIONS:
                for item, due in self.faults.release(direction, now):
                    self.send_message(direction, item, max(due, now))

    def pipe_raw(self) -> None:
        """Not a WebSocket: copy bytes both ways until each side ends."""

        def copy(source: Any, sink: Any, direction: str) -> None:
            while True:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    break
                if not data:
                    break
                self.proxy.flowing.wait()
                try:
                    send_within(sink, data, self.limits.write_timeout)
                except WriteTimeout:
                    self.stalled(direction)
                    return
                except OSError:
                    break
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        self.greenlets = [
            gevent.spawn(copy, self.client, self.upstream, "up"),
            gevent.spawn(copy, self.upstream, self.client, "down"),
        ]
        gevent.joinall(self.greenlets)


def read_head(sock: Any) -> tuple[bytes, bytes]:
    """Read up to the end of an HTTP head: (head, bytes after it)."""
    buffer = b""
    while True:
        found = handshake.split_head(buffer)
        if found is not None:
            return found
        data = sock.recv(CHUNK)
        if not data:
            raise handshake.HeadError("connection ended before the end of the HTTP head")
        buffer += data


def deflate_extension(accepted: str | None, limit: int) -> list[BoundedDeflate]:
    """permessage-deflate with the parameters the server accepted (the same for both legs), or none.

    Inflating stops at `limit` bytes per message (a compression bomb is a 1009, not memory).
    """
    if accepted is None:
        return []
    extension = BoundedDeflate(limit)
    extension.finalize(accepted)
    return [extension]


class RelayServer:
    """Listens on loopback and relays every connection to the one upstream, with the faults of `spec`.

    Runs on the calling thread's gevent hub: `start()` returns the proxy's ws:// URL.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        spec: FaultSpec,
        seed: int | None = None,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        limits: Limits | None = None,
    ) -> None:
        self.upstream_address = upstream
        host = upstream[0]
        self.upstream_authority = f"[{host}]:{upstream[1]}" if ":" in host else f"{host}:{upstream[1]}"
        self.spec = spec
        self.seed = seed
        self.listen = listen
        self.limits = limits or Limits()
        self.tally = Tally()
        self.relayed: collections.Counter[str] = collections.Counter()
        self.limited: collections.Counter[str] = collections.Counter()
        """Connections a bound ended, keyed like the faults: `up:message_too_big` (the client sent it),
        `down:write_timeout` (the client took no bytes), and the same for the server's side."""
        self.relays: set[Relay] = set()
        self.accepted = 0
        self.removed_noted = False
        self.pool = gevent.pool.Pool(None)
        self.flowing = gevent.event.Event()
        """Cleared while paused (a partition): nothing is read, so nothing is forwarded, either way."""
        self.flowing.set()
        self.server: StreamServer | None = None
        self.address: tuple[str, int] = listen

    @property
    def url(self) -> str:
        host = self.address[0]
        return f"ws://{'[' + host + ']' if ':' in host else host}:{self.address[1]}"

    def start(self) -> str:
        self.server = StreamServer(self.listen, self._handle, spawn=self.pool)
        self.server.start()
        self.address = self.server.address[:2]
        if self.spec.data_faults_on:
            log.info("permessage-deflate: removed from the negotiation (data-frame faults need plain messages)")
        else:
            log.info("permessage-deflate: passed through when the client offers it and the server accepts")
        return self.url

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, end every relayed connection (both sockets closed), wait for the greenlets."""
        if self.server is not None:
            self.server.close()
        for relay in list(self.relays):
            relay.close()
        self.pool.kill(timeout=timeout)

    def cut_all(self) -> int:
        """Cut every relayed connection now (each peer sees 1006); returns how many."""
        relays = list(self.relays)
        for relay in relays:
            relay.cut()
        log.info("control: cut %d connection(s)", len(relays))
        return len(relays)

    def pause(self, paused: bool) -> None:
        """Stop (True) or resume (False) forwarding on every connection, new ones included."""
        if paused:
            self.flowing.clear()
        else:
            self.flowing.set()
        log.info("control: forwarding %s", "paused" if paused else "resumed")

    def _handle(self, client: Any, _address: Any) -> None:
        self.flowing.wait()
        self.accepted += 1
        relay = Relay(self, client, self.accepted)
        self.relays.add(relay)
        relay.run()

    def tally_connection(self) -> None:
        self.relayed["connections"] += 1

    def note_removed(self, offers: tuple[str, ...]) -> None:
        if not self.removed_noted:
            self.removed_noted = True
            log.info("extension offers removed from the negotiation: %s", "; ".join(offers))

    def counts(self) -> dict[str, Any]:
        """What the faults did (`direction:fault`), and what was relayed, for reports."""
        return {
            "spec": self.spec.describe(),
            "seed": self.seed,
            "upstream": f"ws://{self.upstream_authority}",
            "connections": self.relayed["connections"],
            "relayed": {key: self.relayed[key] for key in sorted(self.relayed) if key != "connections"},
            "faults": {key: self.tally[key] for key in sorted(self.tally)},
            "limits": {key: self.limited[key] for key in sorted(self.limited)},
        }


def format_counts(counts: dict[str, Any]) -> str:
    """One line: `proxy faults (drop=0.2): down:drop=12 up:drop=9; relayed 40 connections, ...` (and limits hit)."""
    faults = " ".join(f"{key}={value}" for key, value in counts.get("faults", {}).items()) or "nothing injected"
    relayed = counts.get("relayed", {})
    limited = " ".join(f"{key}={value}" for key, value in counts.get("limits", {}).items())
    return (
        f"proxy faults ({counts.get('spec', 'none')}): {faults}; relayed {counts.get('connections', 0)} connections, "
        f"{relayed.get('up:messages', 0)} messages up, {relayed.get('down:messages', 0)} down"
        + (f"; closed at a limit: {limited}" if limited else "")
    )
