"""`python -m server.gateway`: a stateless WebSocket gateway in front of one reference server.

Real deployments put several WebSocket gateways behind a load balancer and keep the users'
state in a broker behind them, so that any gateway can be restarted: its users reconnect
through the balancer to another one and lose nothing the broker still holds. This is such a
gateway for the reference protocol. The state server is the ordinary `python -m server`; for
each client WebSocket on /ws the gateway opens one upstream WebSocket to it (`--upstream`, with
the client's query string, Authorization, Origin and subprotocols) and relays text and binary
messages both ways until either side closes, passing the close code on. An upstream refusal
(401, 429, ...) goes back to the client as it came. Upstream heartbeat pings are answered and
passed on as pings, so a client still sees a live server.

On SIGTERM it stops accepting, closes every client with 1001 (going away), keeps the upstreams
open for `--drain` seconds (messages still arriving for a closed client are dropped and
counted), closes them and exits 0. A client that resumes (`?last_seq=N`) through another
gateway gets those messages replayed by the state server.

Fault switch: `--forget-resume` strips `last_seq` from the upstream handshake, as a gateway that
kept replay state itself would lose it on restart: the messages dropped in the drain are then
never replayed (tests/reliability/test_rolling_restart.py proves a run catches that).
"""

if __name__ == "__main__":  # gevent first, before anything imports ssl or socket (as server/__main__.py)
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import urllib.parse  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import websocket  # noqa: E402
from flask import Flask, Response, jsonify, request  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from simple_websocket import ConnectionClosed  # noqa: E402
from websocket import ABNF  # noqa: E402
from wsproto.events import BytesMessage  # noqa: E402

from server.app import UPGRADED_KEY  # noqa: E402
from server.core import CLOSE_GOING_AWAY, CLOSE_NORMAL  # noqa: E402
from server.serve import serve_until_signal, start_listening  # noqa: E402
from server.transport import Link, WebSocketServer  # noqa: E402

log = logging.getLogger("socketproof.gateway")

PROG = "python -m server.gateway"
CONNECT_TIMEOUT = 5.0
"""Seconds for the upstream's TCP connect and handshake."""
CLOSE_WAIT = 2.0
"""Seconds a close handshake (either side) may take before the socket is just ended."""
DRAIN = 1.0
"""Default --drain: seconds the upstreams stay open after the clients were closed at shutdown."""
CLOSE_UPSTREAM_LOST = 1011
"""To the client when the upstream ended with no close frame (the state server went away)."""
_UNSENDABLE = {1005, 1006, 1015}
"""Close codes that only report what happened and may not be sent (RFC 6455, 7.4.1)."""
_PASSED_BACK = ("Content-Type", "Retry-After", "Sec-WebSocket-Version")
"""Headers of an upstream refusal that go back to the client with it."""


class _Upgraded(Response):
    """The response of an upgraded request: the relay already used the socket."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return []


def _reject(status: int, code: str, message: str) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


def _close_code(code: Any, fallback: int = CLOSE_NORMAL) -> int:
    """A close code the other side may be sent: a received one, or `fallback` for none."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        return fallback
    return fallback if number in _UNSENDABLE or not 1000 <= number <= 4999 else number


class Relay:
    """One client WebSocket (`down`) and its upstream WebSocket (`up`), relayed both ways."""

    def __init__(self, gateway: "Gateway", down: Link, up: websocket.WebSocket) -> None:
        self.gateway = gateway
        self.down = down
        self.up = up
        self.up_closing = False
        """A close frame went upstream (ours, or the echo of the state server's)."""

    def run(self) -> None:
        """Client to upstream here, upstream to client in a greenlet; then both sides end."""
        reader = gevent.spawn(self._to_client)
        code = CLOSE_NORMAL
        ws = self.down.ws
        try:
            while not self.down.dead:
                message = ws.receive()
                if message is None:  # woken with nothing to read: we closed the client
                    break
                self.up.send(message, ABNF.OPCODE_BINARY if isinstance(message, bytes) else ABNF.OPCODE_TEXT)
        except ConnectionClosed as closed:
            log.debug("client closed: %s", closed.reason)
            code = _close_code(closed.reason)
        except (OSError, websocket.WebSocketException) as error:
            log.debug("upstream send failed: %r", error)  # the upstream is gone: the reader closes the client
        finally:
            if self.gateway.stopping:  # keep the upstream until the drain ends (bounded)
                self.gateway.upstreams_closing.wait(self.gateway.drain + CLOSE_WAIT)
                code = CLOSE_GOING_AWAY
            self._close_upstream(code)
            reader.join(CLOSE_WAIT)
            self._end_upstream()
            reader.kill(block=True, timeout=CLOSE_WAIT)
            self._finish_client()

    def _to_client(self) -> None:
        up, down = self.up, self.down
        try:
            while True:
                frame = up.recv_frame()
                opcode = frame.opcode
                if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
                    up.cont_frame.validate(frame)
                    up.cont_frame.add(frame)
                    if up.cont_frame.is_fire(frame):
                        opcode, whole = up.cont_frame.extract(frame)  # the ABNF of the whole message
                        self._deliver(opcode, whole.data)
                elif opcode == ABNF.OPCODE_PING:
                    up.pong(frame.data)
                    if not down.dead:
                        down.ping()  # the client sees the state server's heartbeat
                elif opcode == ABNF.OPCODE_CLOSE:
                    data = bytes(frame.data)
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    reason = data[2:].decode("utf-8", "replace")
                    if not self.up_closing:  # the state server closed: echo it, tell the client
                        self.up_closing = True
                        up.send_close(_close_code(code), reason)
                    down.close(_close_code(code), reason)
                    return
        except (OSError, websocket.WebSocketException) as error:
            log.debug("upstream receive ended: %r", error)
            if not self.up_closing:
                down.close(CLOSE_UPSTREAM_LOST, "gateway: upstream connection lost")

    def _deliver(self, opcode: int, data: bytes) -> None:
        down = self.down
        if down.dead or not down.ws.connected:
            self.gateway.dropped += 1  # its client is gone (the drain): only a resume brings it back
            return
        if opcode == ABNF.OPCODE_TEXT:
            down.send_text(data if isinstance(data, str) else bytes(data).decode("utf-8"))
            return
        try:
            down._write(down.ws.ws.send(BytesMessage(data=bytes(data))))
        except Exception:  # noqa: BLE001 - any send failure ends the client
            down.abort()

    def _close_upstream(self, code: int) -> None:
        if self.up_closing:
            return
        self.up_closing = True
        try:
            self.up.send_close(code, b"")
        except (OSError, websocket.WebSocketException, ValueError):
            pass

    def _end_upstream(self) -> None:
        try:
            self.up.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        try:
            self.up.shutdown()
        except OSError:
            pass

    def _finish_client(self) -> None:
        """Let the client's close handshake end, then make sure its TCP connection ends too."""
        down = self.down
        if not down.dead:
            down.close(CLOSE_NORMAL, "")
        thread = down.ws.thread
        thread.join(timeout=CLOSE_WAIT)
        if thread.is_alive():
            down.abort()
            thread.join(timeout=CLOSE_WAIT)


class Gateway:
    """Every relay of one gateway process, and its graceful shutdown."""

    def __init__(self, upstream: str, forget_resume: bool = False, drain: float = DRAIN) -> None:
        self.upstream = upstream
        self.forget_resume = forget_resume
        self.drain = drain
        self.relays: set[Relay] = set()
        self.stopping = False
        self.upstreams_closing = gevent.event.Event()
        self.served = 0
        self.dropped = 0

    def create_app(self) -> Flask:
        app = Flask("socketproof-gateway")
        app.add_url_rule("/ws", "ws", self.websocket, websocket=True)
        app.add_url_rule("/healthz", "healthz", lambda: jsonify(status="stopping" if self.stopping else "ok"))
        return app

    def upstream_url(self) -> str:
        """--upstream with the client's query string (`last_seq` left out by --forget-resume)."""
        query = request.query_string.decode("latin-1")
        if self.forget_resume:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
            query = urllib.parse.urlencode([(name, value) for name, value in pairs if name != "last_seq"])
        if not query:
            return self.upstream
        return self.upstream + ("&" if "?" in self.upstream else "?") + query

    def connect_upstream(self) -> websocket.WebSocket:
        headers = [f"Authorization: {request.headers['Authorization']}"] if "Authorization" in request.headers else []
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        origin = request.headers.get("Origin")
        up = websocket.create_connection(self.upstream_url(), timeout=CONNECT_TIMEOUT, header=headers,
                                         subprotocols=offered or None, origin=origin,
                                         suppress_origin=origin is None, enable_multithread=True)
        up.settimeout(None)
        return up

    def websocket(self) -> Response:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _reject(400, "not_websocket", "this endpoint only speaks WebSocket: send an Upgrade request")
        if self.stopping:
            return _reject(503, "stopping", "this gateway is shutting down: connect again")
        try:
            up = self.connect_upstream()
        except websocket.WebSocketBadStatusException as refused:  # the state server's answer, passed back
            headers = {name: value for name, value in (refused.resp_headers or {}).items()
                       if name.title() in _PASSED_BACK}
            return Response(refused.resp_body or b"", refused.status_code, headers=headers)
        except (OSError, websocket.WebSocketException) as error:
            return _reject(502, "upstream_unavailable", f"gateway: cannot reach {self.upstream}: {error}")
        try:
            ws = WebSocketServer(request.environ, subprotocols=[up.subprotocol] if up.subprotocol else None)
        except BaseException:
            up.shutdown()
            raise
        request.environ[UPGRADED_KEY] = True  # ClosingHandler ends the TCP connection afterwards
        relay = Relay(self, Link(ws, None, 0.0), up)  # type: ignore[arg-type] - no protocol connection here
        self.relays.add(relay)
        self.served += 1
        try:
            relay.run()
        finally:
            self.relays.discard(relay)
        return _Upgraded()

    def shutdown(self, server: WSGIServer) -> None:
        """Stop accepting, close every client with 1001, drain, close the upstreams: bounded."""
        self.stopping = True
        server.close()
        clients = len(self.relays)
        closers = [gevent.spawn(relay.down.close, CLOSE_GOING_AWAY, "gateway shutting down")
                   for relay in list(self.relays)]
        gevent.joinall(closers, timeout=CLOSE_WAIT)
        gevent.sleep(self.drain)
        self.upstreams_closing.set()
        for _ in range(int(3 * CLOSE_WAIT / 0.05)):  # the relays end their upstreams
            if not self.relays:
                break
            gevent.sleep(0.05)
        server.stop(timeout=CLOSE_WAIT)
        print(f"gateway stopped: served {self.served} connections, closed {clients} at shutdown, "
              f"dropped {self.dropped} messages for closed clients in the {self.drain:g}s drain", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A stateless WebSocket gateway in front of a Socketproof reference server: every client "
        "connection on /ws is relayed to --upstream, so gateways can be restarted behind a load balancer "
        "while the state server keeps every user's messages.",
    )
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="the state server's WebSocket URL, e.g. ws://127.0.0.1:8765/ws")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port; 0 picks a free one and prints it (default 8766)")
    parser.add_argument("--drain", type=float, default=DRAIN, metavar="SECONDS",
                        help=f"at shutdown, seconds the upstreams stay open after the clients are closed "
                        f"(default {DRAIN:g}, at most 30)")
    parser.add_argument("--forget-resume", action="store_true",
                        help="fault switch: strip the client's last_seq from the upstream handshake, as a gateway "
                        "that lost its replay state would (messages in flight at a restart are then lost)")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme not in ("ws", "wss") or not upstream.hostname:
        parser.error(f"--upstream must be a ws:// or wss:// URL with a host, got {args.upstream!r}")
    if not 0 <= args.drain <= 30:
        parser.error(f"--drain must be between 0 and 30 seconds, got {args.drain:g}")
    if not 0 <= args.port <= 65535:  # bind() would raise OverflowError: a traceback, exit 1
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    gateway = Gateway(args.upstream, args.forget_resume, args.drain)
    if args.forget_resume:
        log.warning("fault switch ON (this gateway is wrong on purpose): forget_resume")
    server = start_listening(PROG, args.host, args.port, gateway.create_app())
    if server is None:
        return 2
    serve_until_signal(server, f"Socketproof gateway to {args.upstream}")
    gateway.shutdown(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
