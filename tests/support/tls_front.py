"""A TLS-terminating front for a plain server, which records what each connection asked for.

A deployed service sits behind TLS (a private CA, sometimes client certificates); the reference
server speaks plain ws:// and http://. This front listens on 127.0.0.1 (port 0), does the TLS
handshake (`require_client_cert`: mutual TLS), records each connection's request line and
headers (`heads`: what the service saw, for server-side assertions on headers, cookies, origin,
query and tokens), then relays bytes both ways to the upstream server. Without a context it
relays plain TCP and still records. Whatever it starts, `stop()` ends and checks.
"""

from __future__ import annotations

import dataclasses
import select
import socket
import ssl
import threading
import urllib.parse
from pathlib import Path
from typing import Any

MAX_HEAD = 64 * 1024
HANDSHAKE_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class Head:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-case names; a repeated header's values joined with ', '."""
    client_cert: Any = None

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


class TlsFront:
    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream
        self.context = context
        self.heads: list[Head] = []
        self.handshake_errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, name="tls-front-accept", daemon=True)

    def url(self, scheme: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> TlsFront:
        self._accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def websocket_heads(self) -> list[Head]:
        with self._lock:
            return [head for head in self.heads if head.headers.get("upgrade", "").lower() == "websocket"]

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in list(self._threads):
            thread.join(5)
        alive = [t.name for t in self._threads if t.is_alive()] + (["accept"] if self._accepting.is_alive() else [])
        assert not alive, f"TLS front threads still running: {alive}"

    # -- inside -----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), name=f"tls-front-{len(self._threads)}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _serve(self, raw: socket.socket) -> None:
        client: socket.socket = self._track(raw)
        upstream = None
        try:
            raw.settimeout(HANDSHAKE_TIMEOUT)
            if self.context is not None:
                try:
                    client = self._track(self.context.wrap_socket(raw, server_side=True))
                except (ssl.SSLError, OSError) as error:
                    with self._lock:
                        self.handshake_errors.append(str(error))
                    return
            head = b""
            while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                try:
                    chunk = client.recv(65536)
                except (ssl.SSLError, OSError) as error:  # TLS 1.3: a missing client certificate shows here
                    with self._lock:
                        self.handshake_errors.append(str(error))
                    return
                if not chunk:
                    return
                head += chunk
            self._record(head, client)
            upstream = self._track(socket.create_connection(self.upstream, timeout=5))
            upstream.sendall(head)
            self._relay(client, upstream)
        except OSError:
            pass
        finally:
            _close(client)
            _close(raw)
            if upstream is not None:
                _close(upstream)

    def _record(self, head: bytes, client: socket.socket) -> None:
        text = head.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *lines = text.split("\r\n")
        method, target, *_ = (request_line.split(" ") + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        cert = client.getpeercert() if isinstance(client, ssl.SSLSocket) else None
        with self._lock:
            self.heads.append(Head(method, target, headers, cert))

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(5)
        upstream.settimeout(5)
        pair = {client: upstream, upstream: client}
        while not self._stop.is_set():
            if isinstance(client, ssl.SSLSocket) and client.pending():
                ready = [client]
            else:
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
            for source in ready:
                try:
                    data = source.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                pair[source].sendall(data)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
