"""Pre-flight: one connection to the target before any user starts.

A wrong --host, --ws-path or --jwt-secret would otherwise cost a whole run of failed
connects and a table of UNKNOWN verdicts; here it is one line saying what is wrong and
which option fixes it. Only answers that no run can get past are problems; a slow or
odd answer (a timeout, a full server) is a warning and the run goes ahead to measure it.

Once connected, it tries each operation the mix's flows use (their `uses`) and the adapter
has, once: an echo (ROUND_TRIP), a join (SUBSCRIBE), and a publish that must come back to a
second connection. A server that never answers one (a Socket.IO app with no `echo` event)
would fail every such request of the run after its timeout; here it is one line naming the
option that fixes it (`Adapter.fix_for`), within a few seconds.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Collection, Iterable
from typing import Any

from client import Client
from client.adapter import (
    BOUND_CHANNEL,
    OPERATIONS,
    ROUND_TRIP,
    SUBSCRIBE,
    Delivery,
    SessionContext,
    Stamp,
    UnsupportedOperation,
    stamped_payload,
)
from client.errors import ConnectionClosed, HandshakeRejected, SocketproofError, Timeout
from client.tokens import mint_token
from client.transport import State
from client.urls import target_url, ws_url
from socketproof.run.options import LoadOptions
from socketproof.target import run_length, tls
from socketproof.target.http_publish import PublishFailed

PREFLIGHT_USER = "socketproof-preflight"
TIMEOUT = 5.0
OPERATION_TIMEOUT = 3.0
"""Seconds the pre-flight waits for each operation's answer (an echo, a join, a publish's ack)
and, in all, for a publish to come back: a healthy server answers in milliseconds, and a
missing operation costs this much once instead of a timeout on every request of the run."""
DELIVERY_TRIES = 3
"""Publishes at most, spread over OPERATION_TIMEOUT, until one comes back: a subscription the
server registers late (graphql-ws acknowledges none) or a broadcast it drops on purpose (the
test apps' fault switches) still lets one through."""

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
    "bad_subprotocol": "the server does not speak the protocol's subprotocol: check --protocol and --host",
}
"""Rejections every connection of the run would get too, and what to do about each."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """What the pre-flight connection found: `fatal` ends a headless run with exit 2."""

    fatal: bool
    message: str


def operations_used(flows: Iterable[Any]) -> frozenset[str]:
    """What the mix's flows do on their connections: each flow's `uses` (socketproof/run/users.py)."""
    return frozenset(operation for flow in flows for operation in getattr(flow, "uses", ()))


def check(
    host: str, options: LoadOptions, *, adapter: Any, timeout: float = TIMEOUT, run_time: float | None = None,
    deployment: Any = None, uses: Collection[str] = OPERATIONS, operation_timeout: float = OPERATION_TIMEOUT,
) -> Finding | None:
    """Connect once as the users would, through the run's adapter, and try once each operation
    the flows use (`uses`, of OPERATIONS) that the adapter has; None when the server completed
    the start-up, did each of them, and the run (`run_time` seconds) is long enough for what it
    announced."""
    if "://" not in host:
        return Finding(True, f"--host must be a URL like ws://host:port, got {host!r}")
    try:  # socketproof/target/deployment.py: the run's token source, TLS and handshake extras
        token = (deployment.token(PREFLIGHT_USER, 60) if deployment is not None
                 else mint_token(options.jwt_secret, PREFLIGHT_USER, ttl=60, audience=options.jwt_audience))
    except ValueError as error:  # a login endpoint that gives no token
        return Finding(True, str(error))
    room = f"{PREFLIGHT_USER}-{secrets.token_hex(3)}"  # this pre-flight's own: no run's traffic in it
    context = SessionContext(PREFLIGHT_USER, "preflight", token,
                             channel=room if BOUND_CHANNEL in adapter.capabilities else None)
    address = ws_url(host, options.ws_path)
    try:
        client = Client(address, adapter, context, timeout=timeout)
    except ValueError:  # not a ws://, wss://, http:// or https:// URL
        return Finding(True, f"--host must be a ws://, wss://, http:// or https:// URL, got {host!r}")
    if deployment is not None:
        deployment.apply(client, token)
    url = target_url(host, options.ws_path, adapter.default_path)
    try:
        refused = connected(client, url, host, options, adapter, deployment, timeout)
        if refused is not None:
            return refused
        missing = Tryout(url, address, adapter, options, room, deployment, operation_timeout).run(
            client, frozenset(uses))
    finally:
        try:
            client.close()
        except SocketproofError:
            pass
    if missing is not None and missing.fatal:
        return missing
    ready = client.ready
    beat = ready.heartbeat if ready is not None else None
    short = run_length.warning({"heartbeat": {"interval": beat[0]}} if beat else {}, run_time)
    if missing is not None and short is not None:
        return Finding(False, f"{missing.message}; {short}")
    return missing if short is None else Finding(False, short)


def connected(client: Client, url: str, host: str, options: LoadOptions, adapter: Any, deployment: Any,
              timeout: float) -> Finding | None:
    """Connect `client`; None once the start-up completed, else what no run can get past."""
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
    return None


SERVER_FAILURES = frozenset({"internal", "internal_error", "server_error", "unavailable", "overloaded"})
"""Error codes that say the server has the operation and failed doing it: a bug the run is
there to measure (it shows in Locust's failures), not an option to fix before starting."""


class Tryout:
    """Each operation the run will rely on, tried once on the connected pre-flight client: one
    line for what is missing, naming for each the option that fixes it (`Adapter.fix_for`)."""

    def __init__(self, url: str, address: str, adapter: Any, options: LoadOptions, room: str, deployment: Any,
                 timeout: float) -> None:
        self.url = url
        self.address = address  # what the users dial (the session's own path still applies)
        self.adapter = adapter
        self.options = options
        self.room = room
        self.deployment = deployment
        self.timeout = timeout
        self.sender = Stamp.safe(f"preflight-{room.rsplit('-', 1)[-1]}")
        self.server_errors: list[str] = []
        """Operations the server has but failed on (an internal error): a server bug the run
        measures, said as a warning, not an option mistake."""

    def run(self, client: Client, uses: frozenset[str]) -> Finding | None:
        """None when every operation the flows use worked; else one line (fatal: exit 2 headless)."""
        capabilities = self.adapter.capabilities
        problems: list[str] = []
        if "echo" in uses and ROUND_TRIP in capabilities:
            problems += self.echo(client)
        warning = None
        if client.state is State.OPEN:  # a server that closed on the echo: that line says it all
            if "publish" in uses:  # its subscriber joins the room as every connection of the run does
                more, warning = self.publish_comes_back(client)
                problems += more
            elif "subscribe" in uses and SUBSCRIBE in capabilities:
                problems += self.join(client)
        if problems:
            return Finding(True, f"{self.url}: " + "; ".join(problems))
        notes = [*self.server_errors, *([warning] if warning else [])]
        return Finding(False, f"{self.url}: " + "; ".join(notes)) if notes else None

    # -- each operation ---------------------------------------------------------------

    def echo(self, client: Client) -> list[str]:
        try:
            client.request("echo", "x" * self.options.message_bytes, timeout=self.timeout)
        except UnsupportedOperation:
            return []
        except SocketproofError as error:
            if getattr(error, "code", None) in SERVER_FAILURES:
                self.server_errors.append(f"the server failed the pre-flight's echo ({error}): the run measures it")
                return []
            return [self.missing("echo", self.failed("the pre-flight's echo", error))]
        return []

    def join(self, client: Client) -> list[str]:
        try:
            client.subscribe(self.room, timeout=self.timeout)
        except UnsupportedOperation:
            return []
        except SocketproofError as error:
            return [self.missing("subscribe", self.failed(f"joining room {self.room!r}", error))]
        return []

    def publish_comes_back(self, client: Client) -> tuple[list[str], str | None]:
        """A second connection receives the channel (joins the room with SUBSCRIBE, is opened
        for it with BOUND_CHANNEL, else its own from Ready.channels); `client` publishes to it
        until one publish comes back. (problems, a warning when no second connection opened)."""
        arrived = threading.Event()
        sender = self.sender

        def delivered(delivery: Delivery) -> None:
            if delivery.stamp is not None and delivery.stamp.sender == sender:
                arrived.set()

        bound = BOUND_CHANNEL in self.adapter.capabilities
        context = dataclasses.replace(client.context, label="preflight-subscriber")
        subscriber = Client(self.address, self.adapter, context, timeout=client.timeout)
        if self.deployment is not None:
            self.deployment.apply(subscriber, client.context.token)
        subscriber.on_delivery = delivered
        try:
            try:
                ready = subscriber.connect()
            except SocketproofError as error:
                return [], f"a second pre-flight connection failed ({error}): publishes were not tried"
            if SUBSCRIBE in self.adapter.capabilities:
                problems = self.join(subscriber)
                if problems:
                    return problems, None
                channel = self.room
            else:
                channel = self.room if bound else (ready.channels or (client.context.identity,))[0]
            return self.publish_until_delivered(client, subscriber, channel, arrived), None
        finally:
            try:
                subscriber.close()
            except SocketproofError:
                pass

    def publish_until_delivered(self, client: Client, subscriber: Client, channel: str,
                                arrived: threading.Event) -> list[str]:
        deadline = time.monotonic() + self.timeout
        publisher = self.deployment.publisher if self.deployment is not None else None
        for counter in range(1, DELIVERY_TRIES + 1):
            stamp = Stamp(self.sender, channel, counter, time.time())
            payload = stamped_payload(stamp, self.options.message_bytes)
            doing = f"a publish to {channel!r}"
            try:
                if publisher is None:
                    client.publish(channel, stamp, payload, timeout=self.timeout)
                else:  # --publish-url: through the service's backend, as the run publishes
                    dataclasses.replace(publisher, timeout=self.timeout).publish(channel, payload,
                                                                                client.context.token)
            except UnsupportedOperation:
                return []  # nothing publishes over this protocol: the flows cannot either
            except PublishFailed as error:
                return [f"the pre-flight's publish through --publish-url failed ({error}): "
                        "check --publish-url, --publish-method and --publish-body"]
            except SocketproofError as error:
                return [self.missing("publish", self.failed(doing, error))]
            tries_left = DELIVERY_TRIES - counter + 1  # the time left, shared by the publishes left
            if arrived.wait(max(0.0, (deadline - time.monotonic()) / tries_left)):
                return []
            if subscriber.state is State.CLOSED:  # e.g. a graphql-ws subscription the schema refused
                ended = subscriber.wait_closed(0)
                return [self.missing("subscribe", f"the server ended the pre-flight's subscription to "
                                                  f"{channel!r} ({ended})")]
        lost = f"no publish to {channel!r} came back to a subscriber of it within {self.timeout:g}s ({counter} sent)"
        if publisher is not None:
            return [f"{lost}: check --publish-url and --publish-body (the backend must publish to the "
                    "channel the users receive)"]
        return [self.missing("publish", lost)]

    # -- the lines --------------------------------------------------------------------

    def failed(self, doing: str, error: SocketproofError) -> str:
        if isinstance(error, Timeout):
            return f"no answer to {doing} within {self.timeout:g}s"
        if isinstance(error, ConnectionClosed):
            return f"the server closed the connection on {doing} ({error})"
        return f"the server refused {doing} ({error})"

    def missing(self, operation: str, what: str) -> str:
        """`what` went wrong with `operation`: the line, naming the adapter's option for it."""
        fix = self.adapter.fix_for(operation)
        if fix:
            return f"{what}: check {fix}"
        return f"{what}: is the server speaking the {self.adapter.name} protocol? (check --protocol)"


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
