"""Command line and gevent WSGI serving for the reference server."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.event
from gevent.pywsgi import WSGIHandler, WSGIServer

from common.defaults import DEFAULT_SECRET
from server.app import UPGRADED_KEY, create_app
from server.config import SETTING_NAMES, ConfigError

log = logging.getLogger("socketproof.server")

HANDSHAKE_TIMEOUT = 10.0


class ClosingHandler(WSGIHandler):
    """Ends the TCP connection once a WebSocket session is over (RFC 6455, 7.1.1).

    gevent's handler would otherwise go back to its HTTP keep-alive loop, read the
    client's next bytes as a new HTTP request ("Invalid HTTP method") and keep the
    socket open after the close handshake.
    """

    def handle(self) -> None:
        # Frames are small and often written back to back (an ack, then the message):
        # without TCP_NODELAY the second waits ~40 ms for the peer's delayed ACK.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()

    def handle_one_response(self) -> None:
        super().handle_one_response()
        if self.environ.get(UPGRADED_KEY):
            self.close_connection = True

    # Handshake timeout: gevent waits forever for a request line and headers, so a client
    # that connects and sends nothing, or one byte at a time (slowloris), holds a socket
    # and a greenlet for ever. One deadline covers the request line and all headers.

    def handle_one_request(self) -> object:
        deadline = self._deadline = gevent.Timeout(getattr(self.server, "handshake_timeout", HANDSHAKE_TIMEOUT))
        try:
            return super().handle_one_request()
        except gevent.Timeout as timeout:
            if timeout is not deadline:
                raise
            log.info("dropped %s: no complete request within %ss", self.client_address, deadline.seconds)
            return None  # ends the connection
        finally:
            deadline.close()

    def read_requestline(self) -> str:
        self._deadline.start()
        return super().read_requestline()

    def read_request(self, raw_requestline: str) -> object:
        try:
            return super().read_request(raw_requestline)
        finally:
            self._deadline.close()


LISTEN_BACKLOG = 2048
"""Connections the kernel queues before accept(): gevent's default (256) overflows when a
Locust spawner opens a second's worth of users at once (bench/idle_connections.py --storm);
the kernel caps it at net.core.somaxconn."""

def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one (0.0.0.0, '' and :: are not)."""
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def development_secret_problem(jwt_secret: str, host: str) -> tuple[bool, str] | None:
    """(fatal, line) when the server would run with the public development secret printed in
    server/config.py: anyone could mint an admin token. Off loopback that is refused."""
    if jwt_secret != DEFAULT_SECRET:
        return None
    setting = "setting 'jwt_secret' (SOCKETPROOF_JWT_SECRET)"
    if not is_loopback(host):
        return True, (
            f"python -m server: error: {setting} is the public development secret; refusing to listen on "
            f"{host or 'every interface'}, which is not loopback: set SOCKETPROOF_JWT_SECRET "
            "(or --set jwt_secret=...)"
        )
    return False, (
        f"python -m server: note: {setting} is the public development secret; anyone can mint tokens "
        "for it, so it is only accepted on loopback"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="Socketproof reference WebSocket server (docs/protocol.md). "
        "Every setting can also come from SOCKETPROOF_<NAME> environment variables.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one and prints it (default 8765)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a setting, repeatable; names: {', '.join(SETTING_NAMES)}",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def start_listening(prog: str, host: str, port: int, app: Any,
                    handshake_timeout: float = HANDSHAKE_TIMEOUT) -> WSGIServer | None:
    """A started WSGIServer for `app` (the reference server's or the gateway's), or None after
    one `PROG: error: cannot listen on ...` line."""
    try:
        server = WSGIServer((host, port), app, handler_class=ClosingHandler, log=None, backlog=LISTEN_BACKLOG)
        server.handshake_timeout = handshake_timeout
        server.start()
    except OSError as error:
        print(f"{prog}: error: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return None
    return server


def serve_until_signal(server: WSGIServer, name: str) -> None:
    """Print the ready line (`NAME listening on ws://host:port/ws`) and wait for SIGTERM or SIGINT.

    The handlers go first: a signal sent as soon as the line is read must stop the process
    cleanly (exit 0), not raise KeyboardInterrupt."""
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    host, port = server.address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"{name} listening on ws://{shown}:{port}/ws", flush=True)
    stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 0 <= args.port <= 65535:  # bind() would raise OverflowError: a traceback, exit 1
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    overrides: dict[str, str] = {}
    for item in args.set:
        name, has_value, value = item.partition("=")
        if not has_value:
            parser.error(f"--set takes NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value
    try:
        app = create_app(overrides)
    except ConfigError as error:
        print(f"python -m server: error: {error}", file=sys.stderr)
        return 2
    settings = app.extensions["socketproof"].settings
    problem = None if settings.jwt_public_key else development_secret_problem(settings.jwt_secret, args.host)
    if problem is not None:
        print(problem[1], file=sys.stderr, flush=True)
        if problem[0]:
            return 2
    server = start_listening("python -m server", args.host, args.port, app,
                             app.extensions["socketproof"].settings.handshake_timeout)
    if server is None:
        return 2
    serve_until_signal(server, "Socketproof reference server")
    app.extensions["socketproof"].transport.close_all()
    server.stop(timeout=2)
    return 0
