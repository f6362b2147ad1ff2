"""A TCP fault proxy for reliability tests: latency, cuts, black holes, throttling.

`FaultProxy(target)` listens on 127.0.0.1 port 0 and forwards every connection to
`target` (host, port). Faults are switched while connections are live:

- `latency` (seconds, each direction): every chunk is delivered that much later,
  in order, without limiting throughput.
- `bandwidth` (bytes per second, each direction, per connection; None = unlimited).
- `blackhole(True)`: nothing is forwarded any more and no FIN is sent: both peers
  see a half-open connection (bytes read are thrown away). `blackhole(False)` lets
  bytes through again (what was dropped stays lost).
- `cut(rst=True)`: every live connection is ended at once on both sides, with a RST
  (SO_LINGER 0) or a plain close; new connections are accepted as before.
- `retarget((host, port))`: later connections go elsewhere (a restarted server).

The proxy runs its own gevent hub in a daemon thread (socketproof/proxy/hub_thread.py, the
fault proxy's own), so it works from plain pytest threads and from a Locust process alike;
switches are marshalled onto that hub.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from socketproof.proxy.hub_thread import HubThread

CHUNK = 65536
STOP_TIMEOUT = 5.0


class _Pipe:
    """One proxied connection: two sockets and two pumps (client->server, server->client)."""

    def __init__(self, proxy: FaultProxy, downstream: Any, upstream: Any) -> None:
        self.proxy = proxy
        self.sockets = (downstream, upstream)
        self.greenlets: list[Any] = []
        self.closed = False

    def start(self) -> None:

        down, up = self.sockets
        spawn = self.proxy._handlers.spawn
        self.greenlets = [spawn(self._pump, down, up), spawn(self._pump, up, down)]

    def _pump(self, source: Any, sink: Any) -> None:
        """Read from `source`, apply the faults in force, write to `sink`; in order."""
        import gevent
        import gevent.queue

        proxy = self.proxy
        pending: gevent.queue.Queue[tuple[float, bytes] | None] = gevent.queue.Queue()
        writer = proxy._handlers.spawn(self._writer, pending, sink)
        try:
            while not self.closed:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    break
                if not data:
                    break
                if proxy.blackholed:
                    proxy.dropped_bytes += len(data)
                    continue
                pending.put((time.monotonic() + proxy.latency, data))
        finally:
            pending.put(None)
            writer.join()
            if not self.closed and not proxy.blackholed:
                # The source ended: pass the FIN on, like a router would.
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _writer(self, pending: Any, sink: Any) -> None:
        import gevent

        proxy = self.proxy
        while True:
            item = pending.get()
            if item is None or self.closed:
                return
            due, data = item
            delay = due - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            if proxy.blackholed:  # switched on while this chunk was in flight
                proxy.dropped_bytes += len(data)
                continue
            try:
                rate = proxy.bandwidth
                if rate:
                    step = max(1, int(rate / 20))  # ~50 ms slices
                    for start in range(0, len(data), step):
                        sink.sendall(data[start : start + step])
                        gevent.sleep(len(data[start : start + step]) / rate)
                else:
                    sink.sendall(data)
            except OSError:
                self.close(rst=False)
                return
            proxy.forwarded_bytes += len(data)

    def close(self, rst: bool) -> None:
        """End both sides now: RST (SO_LINGER 0) or a plain close."""
        if self.closed:
            return
        self.closed = True
        for sock in self.sockets:
            try:
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
        self.proxy._pipes.discard(self)
        import gevent

        current = gevent.getcurrent()
        for greenlet in self.greenlets:
            if greenlet is not current:
                greenlet.kill(block=False)


class FaultProxy:
    """See the module docstring. Use as a context manager, or start() / stop()."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.latency = 0.0
        self.bandwidth: float | None = None
        self.blackholed = False
        self.address: tuple[str, int] = (host, 0)
        self.accepted = 0
        self.cuts = 0
        self.forwarded_bytes = 0
        self.dropped_bytes = 0
        self._pipes: set[_Pipe] = set()
        self._hub = HubThread("faultproxy", self._listen, self._close, STOP_TIMEOUT)
        self._server: Any = None
        self._handlers: Any = None

    # -- life ---------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        self.address = self._hub.start()
        return self.address

    def _listen(self) -> tuple[str, int]:
        import gevent.pool
        from gevent.server import StreamServer

        self._handlers = gevent.pool.Pool(None)
        self._server = StreamServer((self.host, 0), self._handle, spawn=self._handlers)
        self._server.start()
        return self._server.address[:2]

    def _close(self) -> None:
        self._server.close()
        for pipe in list(self._pipes):
            pipe.close(rst=False)
        self._handlers.kill(timeout=STOP_TIMEOUT)  # no greenlet may outlive this thread's hub

    def stop(self) -> None:
        self._hub.stop()

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.address[0]}:{self.address[1]}"

    @property
    def connections(self) -> int:
        return len(self._pipes)

    # -- connections ----------------------------------------------------------

    def _handle(self, downstream: Any, _address: Any) -> None:
        from gevent import socket as gsocket

        self.accepted += 1
        try:
            upstream = gsocket.create_connection(self.target, timeout=5)
        except OSError:
            # Nothing to talk to (e.g. the server is restarting): refuse like it would.
            try:
                downstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            downstream.close()
            return
        upstream.settimeout(None)
        downstream.settimeout(None)
        for sock in (downstream, upstream):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        pipe = _Pipe(self, downstream, upstream)
        self._pipes.add(pipe)
        pipe.start()
        for greenlet in pipe.greenlets:
            greenlet.join()
        if not pipe.closed:
            pipe.close(rst=False)

    # -- switches (any thread) ------------------------------------------------

    def blackhole(self, on: bool = True) -> None:
        self.blackholed = on

    def cut(self, rst: bool = True) -> int:
        """End every live connection on both sides now; returns how many were cut."""

        def cut_all() -> int:
            pipes = list(self._pipes)
            for pipe in pipes:
                pipe.close(rst=rst)
            return len(pipes)

        count = self._hub.call(cut_all)
        self.cuts += count
        return count

    def retarget(self, target: tuple[str, int]) -> None:
        self.target = target
