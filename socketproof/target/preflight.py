"""Pre-flight: one connection to the target before any user starts.

A wrong --host, --ws-path or --jwt-secret would otherwise cost a whole run of failed
connects and a table of UNKNOWN verdicts; here it is one line saying what is wrong and
which option fixes it. Only answers that no run can get past are problems; a slow or
odd answer (a timeout, a full server) is a warning and the run goes ahead to measure it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from client import Client
from client.adapter import SessionContext
from client.errors import HandshakeRejected, SocketproofError, Timeout
from client.tokens import mint_token
from client.urls import target_url, ws_url
from socketproof.run.options import LoadOptions
from socketproof.target import run_length, tls

PREFLIGHT_USER = "socketproof-preflight"
TIMEOUT = 5.0

_SECRET_HINT = "check --jwt-secret (or $SOCKETPROOF_JWT_SECRET)"
_REJECTIONS = {
    "forbidden": _SECRET_HINT,
    "unauthorized": _SECRET_HINT,
    "connect_error": f"{_SECRET_HINT}; the server's own words are above",
    "missing_token": "check that the server reads 'Authorization: Bearer <jwt>' (docs/protocol.md)",
    "invalid_token": _SECRET_HINT,
    "token_expired": "check this machine's clock against the server's",
    "origin_not_allowed": "pass --origin with an origin the server allows (e.g. --origin https://app.example.com)",
    "not_found": "check --ws-path (default: the protocol's path, /ws for socketproof)",
    "unsupported_version": "the server wants another WebSocket version than 13",
    "bad_handshake": "the server did not accept a standard WebSocket upgrade",
}
"""Rejections every connection of the run would get too, and what to do about each."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """What the pre-flight connection found: `fatal` ends a headless run with exit 2."""

    fatal: bool
    message: str


def check(
    host: str, options: LoadOptions, *, adapter: Any, timeout: float = TIMEOUT, run_time: float | None = None,
    deployment: Any = None,
) -> Finding | None:
    """Connect once as the users would, through the run's adapter; None when the server
    completed the start-up and the run (`run_time` seconds) is long enough for what it announced."""
    if "://" not in host:
        return Finding(True, f"--host must be a URL like ws://host:port, got {host!r}")
    try:  # socketproof/target/deployment.py: the run's token source, TLS and handshake extras
        token = (deployment.token(PREFLIGHT_USER, 60) if deployment is not None
                 else mint_token(options.jwt_secret, PREFLIGHT_USER, ttl=60, audience=options.jwt_audience))
    except ValueError as error:  # a login endpoint that gives no token
        return Finding(True, str(error))
    context = SessionContext(PREFLIGHT_USER, "preflight", token)
    try:
        client = Client(ws_url(host, options.ws_path), adapter, context, timeout=timeout)
    except ValueError:  # not a ws://, wss://, http:// or https:// URL
        return Finding(True, f"--host must be a ws://, wss://, http:// or https:// URL, got {host!r}")
    if deployment is not None:
        deployment.apply(client, token)
    url = target_url(host, options.ws_path, adapter.default_path)
    try:
        client.connect()
    except HandshakeRejected as error:
        certificate = tls.diagnose(error.message) if error.status == 0 else None
        if certificate is None and error.status == 0 and client.url.startswith("wss://"):  # a reset says nothing
            certificate = tls.diagnose(tls.probe(client.url, getattr(deployment, "ssl_context", None)) or "")
        if certificate is not None:
            return Finding(True, f"cannot connect to {url}: {certificate}")
        source = getattr(getattr(deployment, "tokens", None), "option", "--jwt-secret")
        if error.code == "invalid_token" and not source.startswith("--jwt-secret"):
            return Finding(True, f"{url} rejected the handshake ({error.status} {error.code}): check {source}")
        return rejected(url, host, options, error)
    except Timeout:
        if client.handshake_response is not None:  # a WebSocket server, silent where the protocol speaks
            return Finding(True, f"{url} upgraded but sent no {adapter.name} start-up within {timeout:g}s: is the "
                                 f"server speaking the {adapter.name} protocol? (check --protocol)")
        # A target that accepts TCP and never answers would give a run of 0 requests (issue 12)
        return Finding(True, f"{url} accepted the connection but sent no handshake answer within {timeout:g}s: "
                             "the server is hung or not a WebSocket server (check --host)")
    except SocketproofError as error:
        return started_wrong(url, adapter, error)
    finally:
        try:
            client.close()
        except SocketproofError:
            pass
    ready = client.ready
    beat = ready.heartbeat if ready is not None else None
    short = run_length.warning({"heartbeat": {"interval": beat[0]}} if beat else {}, run_time)
    return None if short is None else Finding(False, short)


def started_wrong(url: str, adapter: Any, error: SocketproofError) -> Finding:
    """The upgrade worked but the start-up did not: a refusal in the protocol's own terms
    (a bad token, a CONNECT_ERROR, close 4403) or any other failed start-up ends a headless run."""
    code = str(getattr(error, "code", "") or "")
    if code in _REJECTIONS or code in ("unauthorized", "forbidden", "connect_error", "not_supported",
                                       "unexpected_frame", "subprotocol"):
        hint = _REJECTIONS.get(code) or f"is the server speaking the {adapter.name} protocol? (check --protocol)"
        return Finding(True, f"{url} refused the {adapter.name} start-up ({error}): {hint}")
    return Finding(True, f"{url} accepted the connection but did not start as the {adapter.name} protocol "
                         f"says ({error}): no run can use it")


def rejected(url: str, host: str, options: LoadOptions, error: HandshakeRejected) -> Finding:
    """One line per kind of refusal, naming the option that fixes it."""
    if error.code == "unreachable":
        return Finding(True, f"cannot reach {url}: {reason(error.message)}; is the server running? (check --host)")
    if error.code == "not_websocket" and error.status == 403:  # e.g. Django Channels' AllowedHostsOriginValidator
        return Finding(True, f"{url} refused the upgrade (HTTP 403): if the server checks the Origin header, pass "
                             "--origin with an origin it allows (e.g. --origin https://app.example.com); else check "
                             "the credentials (--header, the token options)")
    if error.code == "not_websocket":
        answer = f"HTTP {error.status}" if error.status else "no WebSocket answer"
        return Finding(
            True,
            f"{url} is not a WebSocket endpoint ({answer}): check --host (the WebSocket server) and --ws-path",
        )
    if error.code == "response_too_large":  # a head or refusal body past the client's caps: no usable target
        return Finding(True, f"{url} answered the upgrade with more than the client reads ({error.message}): "
                             "check --host (is it a WebSocket server?)")
    if error.code == "not_found" and options.ws_path and host.rstrip("/").endswith(options.ws_path):
        bare = host.rstrip("/")[: -len(options.ws_path)]
        return Finding(True, f"{url} not found (404): give --host without the path, e.g. {bare}")
    hint = _REJECTIONS.get(error.code)
    if error.code == "invalid_token" and options.jwt_audience:
        hint = f"{_SECRET_HINT} and --jwt-audience"
    if hint is None:  # e.g. 429 connection_limit, 5xx: the run measures it
        return Finding(False, f"{url} refused the pre-flight connection ({error.status} {error.code}); starting anyway")
    return Finding(True, f"{url} rejected the handshake ({error.status} {error.code}): {hint}")


def reason(message: str) -> str:
    """'ws://h:p/ws: [Errno 111] Connection refused' -> 'connection refused'."""
    text = message.rsplit(": ", 1)[-1] if ": " in message else message
    lowered = message.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "unknown host name"
    if "unreachable" in lowered:
        return "network unreachable"
    return text.split("] ", 1)[-1].strip() or message
