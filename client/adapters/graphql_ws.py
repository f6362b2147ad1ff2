"""GraphQL over WebSocket (subprotocol `graphql-transport-ws`, the graphql-ws project's
PROTOCOL.md): a sans-I/O session, frames in, events out.

How the protocol maps onto the seam:

- start-up: `connection_init` with a payload (`{"token": <minted JWT>}`, or the JSON of
  --graphql-init) -> `connection_ack` is `Ready`. The protocol's close codes (4400, 4401,
  4403, 4406, 4408, 4409, 4429, 4500) become named errors (`close_error`); no ack within
  --graphql-ack-timeout is `connection_ack_timeout` (`ack_timeout_error`).
- a query or mutation is a `subscribe` with a fresh operation id; its round trip ends at
  `complete` (Reply with the last `next` payload) or `error` (Reply with the error). The
  publish mutation's completion is its ack (PUBLISH_ACK).
- a subscription is a delivery channel: every `next` on its id is a `Delivery` with the
  stamp found in the payload. The protocol has no subscribe acknowledgement, so
  `subscribe()` returns corr None: the subscription counts from when it was sent.
- `ping` from the server is a `KeepAlive` answered by a `pong` carrying the same payload.
- hostile input never raises: an unreadable frame (not JSON, or nested too deeply for the
  decoder) is a `Push(kind="invalid")`; a `next`, `complete` or `error` whose `id` is not a
  string ends the session with `invalid_message`, as the protocol's close 4400 does.

The legacy subprotocol `graphql-ws` (subscriptions-transport-ws) is not supported: a
server that only speaks it ends the session with one line saying so.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from client.adapter import (
    PUBLISH_ACK,
    ROUND_TRIP,
    SUBSCRIBE,
    Adapter,
    AdapterSession,
    Delivery,
    Event,
    Failed,
    Frame,
    Handshake,
    KeepAlive,
    Push,
    Ready,
    Reply,
    Send,
    SessionContext,
    Stamp,
    UnsupportedOperation,
)
from client.adapters import AdapterOption, AdapterSettings
from client.errors import ConnectionClosed, ProtocolError, SocketproofError

SUBPROTOCOL = "graphql-transport-ws"
LEGACY_SUBPROTOCOL = "graphql-ws"

DEFAULT_SUBSCRIPTION = "subscription($channel: String!) { messages(room: $channel) { body } }"
DEFAULT_PUBLISH = "mutation($channel: String!, $stamp: String!) { sendMessage(room: $channel, body: $stamp) { body } }"

OPTIONS = [
    AdapterOption("--graphql-path", "/graphql", "graphql-ws: the GraphQL WebSocket endpoint's path"),
    AdapterOption("--graphql-subscription", DEFAULT_SUBSCRIPTION,
                  "graphql-ws: the subscription document; the adapter fills $channel"),
    AdapterOption("--graphql-publish", DEFAULT_PUBLISH,
                  "graphql-ws: the publish mutation; the adapter fills $channel and $stamp (the stamped payload)"),
    AdapterOption("--graphql-echo", "",
                  "graphql-ws: a query for plain round trips, filled with $message (empty: no echo requests)"),
    AdapterOption("--graphql-init", "",
                  "graphql-ws: JSON object sent as connection_init's payload instead of {\"token\": <minted JWT>}; "
                  "the string $token in it is replaced by the minted token"),
    AdapterOption("--graphql-ack-timeout", 10.0, "graphql-ws: seconds to wait for connection_ack", float),
]

NOT_SUPPORTED_LEGACY = ("the server speaks only the legacy graphql-ws subprotocol "
                        "(subscriptions-transport-ws), which is not supported: use graphql-transport-ws")


class GraphQLClosed(ConnectionClosed):
    """The server closed with one of the protocol's own close codes.

    Unlike a plain ConnectionClosed, `code` is the error's name (`forbidden`), as the
    pre-flight and Locust's failure table group by it; the number is `close_code`.
    """

    def __init__(self, close_code: int, reason: str, name: str, meaning: str) -> None:
        super().__init__(close_code, reason)
        self.close_code = close_code
        self.code = name  # type: ignore[assignment]
        self.name = name
        self.meaning = meaning

    def __str__(self) -> str:
        said = f" (server said {self.reason!r})" if self.reason else ""
        return f"{self.name} (close {self.close_code}): {self.meaning}{said}"


class GraphQLSessionError(SocketproofError):
    """A start-up or protocol failure found by the client side (no ack in time, a legacy
    server, a refused subscription, a frame the protocol does not have)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


CLOSE_CODES: dict[int, tuple[str, str]] = {
    4400: ("invalid_message", "the server found a message it could not accept"),
    4401: ("unauthorized", "the server refused an operation before connection_ack"),
    4403: ("forbidden", "the server refused connection_init: check --jwt-secret or --graphql-init"),
    4406: ("not_supported", "the server does not speak graphql-transport-ws "
                            "(a legacy graphql-ws server is not supported)"),
    4408: ("connection_init_timeout", "the server got no connection_init in time"),
    4409: ("subscriber_exists", "the server already has a subscription with this operation id"),
    4429: ("too_many_initialisation_requests", "the server got connection_init twice"),
    4500: ("internal_server_error", "the server failed"),
}
"""graphql-transport-ws close code -> (name, what it means for the user). The names the
pre-flight treats as fatal (unauthorized, forbidden, not_supported) end a run with exit 2."""


def close_error(code: int | None, reason: str = "") -> GraphQLClosed | None:
    """The named error for a close frame with a graphql-transport-ws code; None for any
    other close (a normal 1000, a network drop), which the client reports as it is."""
    if code is None or code not in CLOSE_CODES:
        return None
    name, meaning = CLOSE_CODES[code]
    return GraphQLClosed(code, reason, name, meaning)


def ack_timeout_error(seconds: float) -> GraphQLSessionError:
    """What a session whose server never sent connection_ack fails with."""
    return GraphQLSessionError("connection_ack_timeout", f"no connection_ack within {seconds:g} s")


def invalid_id_error(kind: str, op_id: Any) -> GraphQLSessionError:
    """What a session fails with when a server's operation message has no string `id` (a
    list or object would not even be a key to look up)."""
    shown = "no id" if op_id is None else f"an id of type {type(op_id).__name__}"
    return GraphQLSessionError("invalid_message", f"the server sent {kind!r} with {shown}; "
                                                  "graphql-transport-ws operation ids are strings")


_VARIABLE_RE = re.compile(r"\$([_A-Za-z][_0-9A-Za-z]*)\s*:")


def declared_variables(document: str) -> frozenset[str]:
    """The variable names a GraphQL document declares (`$name:` in its definition)."""
    return frozenset(_VARIABLE_RE.findall(document))


def _fill(document: str, declared: frozenset[str], values: dict[str, Any]) -> dict[str, Any]:
    """The operation payload with only the variables the document declares."""
    return {"query": document, "variables": {name: value for name, value in values.items() if name in declared}}


def _errors(payload: Any) -> list[Any] | None:
    """The GraphQL `errors` of an execution result (a `next` payload), if any."""
    if isinstance(payload, dict) and payload.get("errors"):
        errors = payload["errors"]
        return errors if isinstance(errors, list) else [errors]
    return None


def _graphql_error(errors: Any) -> ProtocolError:
    """A ProtocolError (`graphql_error: <first message>`) carrying all errors in `frame`."""
    errors = errors if isinstance(errors, list) else [errors]
    first = errors[0] if errors else {}
    message = first.get("message") if isinstance(first, dict) else first
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return ProtocolError("graphql_error", f"{message}{more}", {"errors": errors})


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class GraphQLWSSession(AdapterSession):
    """One connection's graphql-transport-ws state: operation ids and what they are for."""

    def __init__(self, adapter: GraphQLWSAdapter, context: SessionContext) -> None:
        self.adapter = adapter
        self.context = context
        self.acked = False
        self._ids = itertools.count(1)
        self._requests: dict[str, Any] = {}
        """Operation id of a query/mutation in flight -> its last `next` payload."""
        self.subscriptions: dict[str, str] = {}
        """Operation id of an active subscription -> its channel."""

    @property
    def start_timeout(self) -> float:
        """Seconds the client waits for Ready (connection_ack) before `ack_timeout_error`."""
        return self.adapter.ack_timeout

    def start_timed_out(self) -> GraphQLSessionError:
        """What connect() raises when no connection_ack came within start_timeout."""
        return ack_timeout_error(self.start_timeout)

    def handshake(self) -> Handshake:
        return Handshake(path=self.adapter.default_path, subprotocols=(SUBPROTOCOL,))

    def negotiated(self, subprotocol: str | None) -> Sequence[Event]:
        """Called with the server's Sec-WebSocket-Protocol after the upgrade. The legacy
        graphql-ws or another protocol ends the session with one line; none at all is let
        through, so a server that closes with 4406 says why itself (and one that ignores
        the header and speaks graphql-transport-ws anyway still works)."""
        if subprotocol in (SUBPROTOCOL, None, ""):
            return ()
        if subprotocol == LEGACY_SUBPROTOCOL:
            return (Failed(GraphQLSessionError("not_supported", NOT_SUPPORTED_LEGACY)),)
        return (Failed(GraphQLSessionError(
            "subprotocol", f"not supported: the server chose {subprotocol!r}; it must accept graphql-transport-ws")),)

    def start(self) -> Sequence[Frame]:
        return (_encode({"type": "connection_init", "payload": self.adapter.init_payload(self.context.token)}),)

    def closed(self, code: int | None, reason: str = "") -> GraphQLClosed | None:
        """The connection ended (the client calls this): a protocol close code is a named
        error raised to every waiter; None leaves the client's plain ConnectionClosed."""
        return close_error(code, reason)

    def receive(self, frame: Frame) -> Sequence[Event]:
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." from a hostile server
            return (Push(frame, kind="invalid"),)
        if not isinstance(message, dict):
            return (Push(message, kind="invalid"),)
        kind = message.get("type")
        if kind in ("next", "complete", "error") and not isinstance(message.get("id"), str):
            return (Failed(invalid_id_error(kind, message.get("id"))),)
        if kind == "next":
            return self._next(message, frame)
        if kind == "complete":
            return self._complete(message)
        if kind == "ping":
            return self._ping(message)
        if kind == "pong":
            return (Push(message.get("payload"), kind="pong"),)
        if kind == "error":
            return self._error(message)
        if kind == "connection_ack":
            if self.acked:
                return (Push(message, kind="invalid"),)
            self.acked = True
            return (Ready(info=message.get("payload")),)
        if kind in ("ka", "data", "connection_error", "connection_keep_alive"):
            return (Failed(GraphQLSessionError("not_supported", NOT_SUPPORTED_LEGACY)),)
        return (Failed(GraphQLSessionError("unexpected_frame", f"graphql-transport-ws has no message {kind!r}")),)

    def _next(self, message: dict[str, Any], frame: Frame) -> Sequence[Event]:
        op_id = message.get("id")
        payload = message.get("payload")
        channel = self.subscriptions.get(op_id)  # type: ignore[arg-type]
        if channel is not None:
            if _errors(payload) and not (isinstance(payload, dict) and payload.get("data")):
                return (Push({"channel": channel, "errors": _errors(payload)}, kind="subscription_error"),)
            stamp = Stamp.find(frame)  # one message carries one stamp: no need to walk the payload
            body = payload.get("data") if isinstance(payload, dict) else payload
            return (Delivery(channel, stamp, body),)
        if op_id in self._requests:
            self._requests[op_id] = payload  # type: ignore[index]
            return ()
        return (Push(message, kind="stale"),)

    def _complete(self, message: dict[str, Any]) -> Sequence[Event]:
        op_id = message.get("id")
        if op_id in self._requests:
            payload = self._requests.pop(op_id)  # type: ignore[arg-type]
            errors = _errors(payload)
            return (Reply(op_id, body=payload, error=_graphql_error(errors) if errors else None),)
        channel = self.subscriptions.pop(op_id, None)  # type: ignore[arg-type]
        if channel is not None:
            return (Push({"channel": channel, "id": op_id}, kind="subscription_complete"),)
        return (Push(message, kind="stale"),)

    def _error(self, message: dict[str, Any]) -> Sequence[Event]:
        op_id = message.get("id")
        error = _graphql_error(message.get("payload"))
        if op_id in self._requests:
            del self._requests[op_id]  # type: ignore[arg-type]
            return (Reply(op_id, error=error),)
        channel = self.subscriptions.pop(op_id, None)  # type: ignore[arg-type]
        if channel is not None:
            return (Failed(GraphQLSessionError(
                "subscription_refused", f"the subscription to {channel!r} failed: {error.message}")),)
        return (Push(message, kind="stale"),)

    def _ping(self, message: dict[str, Any]) -> Sequence[Event]:
        pong: dict[str, Any] = {"type": "pong"}
        if message.get("payload") is not None:
            pong["payload"] = message["payload"]
        return (KeepAlive(), Send(_encode(pong)))

    def _operation(self, payload: dict[str, Any]) -> tuple[str, str]:
        op_id = str(next(self._ids))
        return op_id, _encode({"id": op_id, "type": "subscribe", "payload": payload})

    def request(self, name: str, body: Any) -> tuple[Any, Frame]:
        adapter = self.adapter
        if name != "echo" or not adapter.echo:
            raise UnsupportedOperation(adapter.name, name)
        op_id, frame = self._operation(_fill(adapter.echo, adapter.echo_vars, {"message": body}))
        self._requests[op_id] = None
        return op_id, frame

    def publish(self, channel: str, stamp: Stamp, payload: str) -> tuple[Any, Frame]:
        adapter = self.adapter
        values = {"channel": channel, "stamp": payload}
        op_id, frame = self._operation(_fill(adapter.publish_document, adapter.publish_vars, values))
        self._requests[op_id] = None
        return op_id, frame

    def subscribe(self, channel: str) -> tuple[Any, Frame]:
        """No acknowledgement exists in graphql-transport-ws: corr None, counted from send."""
        adapter = self.adapter
        op_id, frame = self._operation(_fill(adapter.subscription, adapter.subscription_vars, {"channel": channel}))
        self.subscriptions[op_id] = channel
        return None, frame

    def unsubscribe(self, channel: str) -> Sequence[Frame]:
        """`complete` for every active subscription to `channel` (the client stops listening)."""
        ids = [op_id for op_id, joined in self.subscriptions.items() if joined == channel]
        for op_id in ids:
            del self.subscriptions[op_id]
        return [_encode({"id": op_id, "type": "complete"}) for op_id in ids]

    def goodbye(self) -> Sequence[Frame]:
        return ()


class GraphQLWSAdapter(Adapter):
    """graphql-transport-ws, configured from the --graphql-* options."""

    name = "graphql-ws"

    def __init__(self, settings: AdapterSettings | None = None) -> None:
        settings = settings or AdapterSettings()
        self.default_path = str(settings.get("graphql_path", "/graphql"))
        if not self.default_path.startswith("/"):
            raise ValueError(f"--graphql-path {self.default_path!r} must start with '/'")
        self.subscription = str(settings.get("graphql_subscription", DEFAULT_SUBSCRIPTION))
        self.publish_document = str(settings.get("graphql_publish", DEFAULT_PUBLISH))
        self.echo = str(settings.get("graphql_echo", ""))
        self.subscription_vars = declared_variables(self.subscription)
        self.publish_vars = declared_variables(self.publish_document)
        self.echo_vars = declared_variables(self.echo)
        if "stamp" not in self.publish_vars:
            raise ValueError("--graphql-publish must declare $stamp (the stamped payload goes there)")
        self.init = _parse_init(settings.get("graphql_init", ""))
        self.ack_timeout = float(settings.get("graphql_ack_timeout", 10.0))
        if not self.ack_timeout > 0:
            raise ValueError(f"--graphql-ack-timeout {self.ack_timeout:g} must be > 0")
        self.capabilities = frozenset({PUBLISH_ACK, SUBSCRIBE} | ({ROUND_TRIP} if self.echo else set()))

    def init_payload(self, token: str | None) -> dict[str, Any]:
        """connection_init's payload: --graphql-init (with $token filled) or {"token": token}."""
        if self.init is None:
            return {"token": token} if token is not None else {}
        return _replace_token(self.init, token or "")

    def session(self, context: SessionContext) -> GraphQLWSSession:
        return GraphQLWSSession(self, context)

    def fix_for(self, operation: str) -> str | None:
        if operation == "echo":
            return "--graphql-echo (a query your schema answers, with $message)"
        if operation in ("subscribe", "publish"):
            return "--graphql-subscription / --graphql-publish (the subscription a publish mutation must reach)"
        return None


def _parse_init(text: Any) -> dict[str, Any] | None:
    if text in (None, ""):
        return None
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"--graphql-init is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("--graphql-init must be a JSON object")
    return value


def _replace_token(value: Any, token: str) -> Any:
    if isinstance(value, str):
        return value.replace("$token", token)
    if isinstance(value, dict):
        return {key: _replace_token(item, token) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_token(item, token) for item in value]
    return value


ADAPTER = GraphQLWSAdapter
