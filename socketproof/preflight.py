"""Pre-flight: one connection to the target before any user starts.

A wrong --host, --ws-path or --jwt-secret would otherwise cost a whole run of failed
connects and a table of UNKNOWN verdicts; here it is one line saying what is wrong and
which option fixes it. Only answers that no run can get past are problems; a slow or
odd answer (a timeout, a full server) is a warning and the run goes ahead to measure it.
"""

from __future__ import annotations

import dataclasses

from client import ProtocolClient
from client.errors import HandshakeRejected, SocketproofError, Timeout
from client.tokens import mint_token
from socketproof import run_length
from socketproof.options import LoadOptions

PREFLIGHT_USER = "socketproof-preflight"
TIMEOUT = 5.0

_SECRET_HINT = "check --jwt-secret (or $SOCKETPROOF_JWT_SECRET)"
_REJECTIONS = {
    "missing_token": "check that the server reads 'Authorization: Bearer <jwt>' (docs/protocol.md)",
    "invalid_token": _SECRET_HINT,
    "token_expired": "check this machine's clock against the server's",
    "origin_not_allowed": "Socketproof connects without an Origin header: let the server accept that",
    "not_found": "check --ws-path (default /ws)",
    "unsupported_version": "the server wants another WebSocket version than 13",
    "bad_handshake": "the server did not accept a standard WebSocket upgrade",
}
"""Rejections every connection of the run would get too, and what to do about each."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """What the pre-flight connection found: `fatal` ends a headless run with exit 2."""

    fatal: bool
    message: str


def ws_url(host: str, ws_path: str) -> str:
    """The URL every user connects to (WebSocketUser.ws_url)."""
    return host.rstrip("/") + ws_path


def check(
    host: str, options: LoadOptions, timeout: float = TIMEOUT, run_time: float | None = None
) -> Finding | None:
    """Connect once as the users would; None when the server welcomed us and the run
    (`run_time` seconds) is long enough for what its welcome announces."""
    url = ws_url(host, options.ws_path)
    if "://" not in host:
        return Finding(True, f"--host must be a URL like ws://host:port, got {host!r}")
    token = mint_token(options.jwt_secret, PREFLIGHT_USER, ttl=60, audience=options.jwt_audience)
    try:
        client = ProtocolClient(url, token=token, timeout=timeout, user=PREFLIGHT_USER, label="preflight")
    except ValueError:  # not a ws://, wss://, http:// or https:// URL
        return Finding(True, f"--host must be a ws://, wss://, http:// or https:// URL, got {host!r}")
    try:
        client.connect()
    except HandshakeRejected as error:
        return rejected(url, host, options, error)
    except Timeout:
        return Finding(False, f"{url} sent no welcome within {timeout:g}s; starting anyway")
    except SocketproofError as error:
        return Finding(False, f"{url} accepted the connection but did not greet as docs/protocol.md says ({error})")
    finally:
        try:
            client.close()
        except SocketproofError:
            pass
    short = run_length.warning(client.welcome or {}, run_time)
    return None if short is None else Finding(False, short)


def rejected(url: str, host: str, options: LoadOptions, error: HandshakeRejected) -> Finding:
    """One line per kind of refusal, naming the option that fixes it."""
    if error.code == "unreachable":
        return Finding(True, f"cannot reach {url}: {reason(error.message)}; is the server running? (check --host)")
    if error.code == "not_websocket":
        answer = f"HTTP {error.status}" if error.status else "no WebSocket answer"
        return Finding(
            True,
            f"{url} is not a WebSocket endpoint ({answer}): check --host (the WebSocket server) and --ws-path",
        )
    if error.code == "not_found" and host.rstrip("/").endswith(options.ws_path):
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
