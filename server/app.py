"""Flask app factory: HTTP routes, the handshake checks, and the one flask-sock route."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.exceptions import HTTPException

from server.auth import AuthError, verify_token
from server.config import Settings, load_settings
from server.core import Hub
from server.transport import Transport, WebSocketServer

log = logging.getLogger("socketproof.server")

class _Sock(Sock):
    """flask-sock, upgrading with server.transport.WebSocketServer (in-order failing close)."""

    def route(self, path: str, bp: Any = None, **kwargs: Any) -> Callable[[Callable[..., None]], None]:
        def decorator(session: Callable[..., None]) -> None:
            @functools.wraps(session)
            def websocket_route(*args: Any, **kwargs: Any) -> Response:
                ws = WebSocketServer(request.environ, **current_app.config.get("SOCK_SERVER_OPTIONS", {}))
                try:
                    session(ws, *args, **kwargs)
                except ConnectionClosed:
                    pass
                try:
                    ws.close()
                except Exception:  # noqa: BLE001 - already closed
                    pass
                return _Upgraded()

            kwargs["websocket"] = True
            if self.bp is None:
                self.bp = Blueprint("__flask_sock", __name__)
            self.bp.route(path, **kwargs)(websocket_route)

        return decorator


class _Upgraded(Response):
    """The response of an upgraded request: the WebSocket session already used the socket."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return []


sock = _Sock()

CLAIMS_KEY = "socketproof.claims"
LAST_SEQ_KEY = "socketproof.last_seq"
UPGRADED_KEY = "socketproof.upgraded"


@dataclasses.dataclass
class Runtime:
    """What one app instance holds: settings, the protocol core, the transport."""

    settings: Settings
    hub: Hub
    transport: Transport
    started: float = dataclasses.field(default_factory=time.monotonic)
    """When this app was made (the refuse_after_start switch counts from it)."""


def runtime() -> Runtime:
    return current_app.extensions["socketproof"]


def _reject(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _check_handshake() -> Response | None:
    """docs/protocol.md section 1, in its order; on success reserve a connection slot."""
    rt = runtime()
    echo = request.path == "/echo"
    if echo and not rt.settings.echo_endpoint:
        return _reject(404, "not_found", "no such endpoint: /echo (setting echo_endpoint is off)")
    if request.path != "/ws" and not echo:
        return None
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    connection = "upgrade" in request.headers.get("Connection", "").lower()
    if request.method != "GET" or not (upgrade and connection):
        return _reject(400, "not_websocket", "this endpoint only speaks WebSocket: send an Upgrade request")
    refusing = rt.settings.faults.refuse_after_start - (time.monotonic() - rt.started)
    if refusing > 0:  # fault switch: a server still starting up
        return _reject(503, "starting", "the server is starting: try again shortly",
                       {"Retry-After": str(max(1, int(refusing + 0.999)))})
    if request.headers.get("Sec-WebSocket-Version") != "13":
        return _reject(
            426,
            "unsupported_version",
            "only WebSocket version 13 is supported",
            {"Sec-WebSocket-Version": "13"},
        )
    if not request.headers.get("Sec-WebSocket-Key"):
        return _reject(400, "bad_handshake", "Sec-WebSocket-Key header is missing")
    origins = rt.settings.allowed_origins
    if origins and request.headers.get("Origin") not in origins:
        return _reject(403, "origin_not_allowed", f"origin {request.headers.get('Origin')!r} is not allowed")
    token = _bearer(request.headers.get("Authorization")) or request.args.get("token")
    try:
        claims = rt.hub.authenticate(token, time.time())
    except AuthError as error:
        return _reject(401, error.code, error.message)
    if echo:
        return None
    raw_last_seq = request.args.get("last_seq")
    last_seq = None
    if raw_last_seq is not None:
        if not (raw_last_seq.isascii() and raw_last_seq.isdigit()):  # int() would fail on '²'
            return _reject(400, "invalid_field", f"last_seq must be an integer >= 0, got {raw_last_seq!r}")
        last_seq = int(raw_last_seq)
    if not rt.hub.reserve(claims.user):
        limit = rt.settings.max_connections_per_user
        return _reject(429, "connection_limit", f"user {claims.user!r} already has {limit} open connections")
    request.environ[CLAIMS_KEY] = claims
    request.environ[LAST_SEQ_KEY] = last_seq
    return None


def _release_unclaimed(_error: BaseException | None) -> None:
    """A handshake that reserved a slot but never reached the session gives it back."""
    claims = request.environ.get(CLAIMS_KEY)
    if claims is not None and not request.environ.get(UPGRADED_KEY):
        runtime().hub.release(claims.user)


@sock.route("/ws")
def websocket(ws: Any) -> None:
    request.environ[UPGRADED_KEY] = True
    runtime().transport.serve(ws, request.environ[CLAIMS_KEY], request.environ[LAST_SEQ_KEY])


@sock.route("/echo")
def echo(ws: Any) -> None:
    """`/echo` (setting `echo_endpoint`): the bare WebSocket layer, for conformance suites."""
    request.environ[UPGRADED_KEY] = True
    runtime().transport.serve_echo(ws)


def _healthz() -> Response:
    return jsonify(status="ok")


def _stats() -> Response:
    rt = runtime()
    try:
        claims = verify_token(_bearer(request.headers.get("Authorization")), rt.settings, time.time())
    except AuthError as error:
        if error.code == "missing_token":  # the handshake's hint names ?token=, which /stats does not read
            return _reject(401, error.code, "/stats needs an admin token: send 'Authorization: Bearer <jwt>'")
        return _reject(401, error.code, f"/stats needs an admin token: {error.message}")
    if claims.role != "admin":
        return _reject(403, "forbidden", "/stats needs a token with the claim role=admin")
    return jsonify(rt.hub.stats(time.time()))


def _http_error(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    return _reject(error.code or 500, code, error.description or error.name)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the server: settings from defaults, then SOCKETPROOF_* variables, then `config`."""
    settings = load_settings(config)
    app = Flask("socketproof")
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": settings.max_message_bytes}
    hub = Hub(settings)
    app.extensions["socketproof"] = Runtime(settings, hub, Transport(hub))
    app.before_request(_check_handshake)
    app.teardown_request(_release_unclaimed)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.add_url_rule("/stats", "stats", _stats)
    app.register_error_handler(HTTPException, _http_error)
    sock.init_app(app)
    if settings.faults.active():
        log.warning("fault switches ON (this server is wrong on purpose): %s", settings.faults.describe())
    return app
