"""`WebSocketUser`: a Locust user that owns protocol clients, shaped like locust/contrib/mqtt.py.

The protocol client fires Locust's request event itself, with true round-trip times
matched by message id; this user adds what needs two connections (`deliver`) or a
whole flow (`reconnect`), and records every connection into the run's history.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from locust import User

from client import ProtocolClient
from client.connection import State
from client.errors import ConnectionClosed, SocketproofError
from client.tokens import mint_token
from socketproof import plugin
from socketproof.run import RunState

F = TypeVar("F", bound=Callable[..., Any])

_RNG = random.Random()
"""One generator for all users of the process (they run on one thread): a Random per
user is 2.5 KB of Mersenne Twister state, an eighth of an idle connection's budget."""
if hasattr(os, "register_at_fork"):  # `locust --processes` forks: workers must not share a sequence
    os.register_at_fork(after_in_child=_RNG.seed)


def reported(task: F) -> F:
    """Protocol failures are already in Locust's stats (the client fired them): do not
    let them also count as task exceptions; the next task reconnects if needed."""

    @functools.wraps(task)
    def wrapper(self: WebSocketUser, *args: Any, **kwargs: Any) -> Any:
        if self.shared.stopping:  # the run is draining: send nothing new
            return None
        try:
            return task(self, *args, **kwargs)
        except SocketproofError:
            return None

    return wrapper  # type: ignore[return-value]


class WebSocketUser(User):
    """Base for Socketproof users: connect, measure, record. Subclasses write the flow."""

    abstract = True
    flow = "ws"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared: RunState = plugin.run_state(environment)
        self.options = self.shared.options
        self.rng = _RNG
        self.identity = self.shared.identity(self.flow)
        self.clients: list[ProtocolClient] = []
        self.client: ProtocolClient | None = None
        self.last_seq: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self._message_numbers = itertools.count(1)
        self._opened_at: dict[str, float] = {}

    def wait_time(self) -> float:
        """Pace by --send-interval, jittered so users do not march in step."""
        return self.options.send_interval * self.rng.uniform(0.5, 1.5)

    def connection(self) -> ProtocolClient:
        """This user's main connection, (re)opened when it is closed or has gone silent.

        A reopened connection resumes after the last seq the old one saw (`?last_seq`),
        so what the server sent into a dead connection is replayed, or announced as a gap.
        """
        client = self.client
        if client is not None and client.state is State.OPEN:
            silence = self.silence(client)
            if silence is not None:
                self.report("liveness", silence * 1000.0, ConnectionClosed(None, f"no server ping for {silence:.1f}s"))
                self.close_client(client, abrupt=True)
        if client is None or client.state is not State.OPEN:
            resume = None
            if client is not None:
                resume = self.last_seq.get(client.label)
                self.close_client(client)
            self.client = None
            self.client = self.open_client(last_seq=resume)
        return self.client

    def silence(self, client: ProtocolClient) -> float | None:
        """Seconds without a sign of life (welcome or heartbeat ping) when over 2 heartbeat
        intervals + the timeout, else None: the server (or the path to it) is gone, even
        though no FIN arrived. The request timeout catches the same for busy connections."""
        heartbeat = (client.welcome or {}).get("heartbeat") or {}
        interval, timeout = heartbeat.get("interval"), heartbeat.get("timeout") or 0
        if not isinstance(interval, (int, float)) or interval <= 0 or not isinstance(timeout, (int, float)):
            return None
        last = max(client.ping_times[-1] if client.ping_times else 0.0, self._opened_at.get(client.label, 0.0))
        silence = time.time() - last
        return silence if last and silence > 2 * interval + timeout else None

    # -- connections --------------------------------------------------------

    def ws_url(self) -> str:
        host = (self.host or self.environment.host or "").rstrip("/")
        if not host:
            raise SocketproofError("no host: pass --host ws://host:port or run without it for the embedded server")
        return host + self.options.ws_path

    def token(self, identity: str | None = None, ttl: float = 3600.0) -> str:
        return mint_token(
            self.options.jwt_secret, identity or self.identity, ttl=ttl, audience=self.options.jwt_audience
        )

    def recorder_for(self, identity: str, label: str) -> Any:
        """The history recorder of a new connection. Only bench/checks_overhead.py overrides it
        (returning None) to measure what recording costs; every real run records."""
        return self.shared.recorder.connection(identity, label)

    def open_client(self, identity: str | None = None, last_seq: int | None = None) -> ProtocolClient:
        """Connect a new recorded client for `identity` (default: this user's)."""
        identity = identity or self.identity
        label = self.shared.label(identity)
        client = ProtocolClient(
            self.ws_url(),
            token=self.token(identity),
            recorder=self.recorder_for(identity, label),
            request_event=self.environment.events.request,
            timeout=self.options.request_timeout,
            user=identity,
            label=label,
        )
        client.on_push = functools.partial(self._on_push, label)
        session = client.connect(last_seq)
        self._opened_at[label] = time.time()
        # What this connection counts as seen: the welcome's last_seq covers the replay
        # (and an announced gap); live pushes raise it in _on_push.
        seen = session.welcome.get("last_seq")
        if isinstance(seen, int):
            self.last_seq[label] = max(self.last_seq.get(label, 0), seen)
        version = session.snapshot.get("version")
        if isinstance(version, int):
            self.versions[label] = max(self.versions.get(label, 0), version)
        self.clients.append(client)
        self.shared.live.add(identity)
        return client

    def close_client(self, client: ProtocolClient, *, abrupt: bool = False) -> None:
        """Close (or drop) a connection and forget its per-connection state: a long run
        with many reconnects must not grow. Read `last_seq` first to resume."""
        for per_connection in (self._opened_at, self.last_seq, self.versions):
            per_connection.pop(client.label, None)
        if client in self.clients:
            self.clients.remove(client)
            self.shared.live.remove(client.user or self.identity)
        try:
            client.drop() if abrupt else client.close()
        except SocketproofError:
            pass

    def tabs(self, count: int) -> list[ProtocolClient]:
        """This identity's open connections ("tabs"): dead ones replaced, topped up to `count`."""
        for tab in [c for c in self.clients if c.state is not State.OPEN]:
            self.close_client(tab)
        while len(self.clients) < count:
            self.open_client()
        return self.clients

    def on_stop(self) -> None:
        for client in list(self.clients):
            self.close_client(client)
        self.client = None

    # -- measured operations ------------------------------------------------

    def payload(self) -> str:
        return "x" * self.options.message_bytes

    def send_message(self, client: ProtocolClient, to: str) -> dict[str, Any]:
        """`send` with a run-unique id (`<label>:<n>`), tracked for the `deliver` time."""
        message_id = f"{client.label}:{next(self._message_numbers)}"
        self.shared.deliveries.sent(message_id)
        return client.send(to, self.payload(), id=message_id)

    def _on_push(self, label: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "patch":
            self.versions[label] = max(self.versions.get(label, 0), message.get("version", 0))
            return
        if kind != "message":
            return
        seq = message.get("seq")
        if isinstance(seq, int) and seq > self.last_seq.get(label, 0):
            self.last_seq[label] = seq
        elapsed = self.shared.deliveries.received(message.get("id"))
        if elapsed is not None:
            self.report("deliver", elapsed)

    def report(self, name: str, elapsed_ms: float, exception: BaseException | None = None) -> None:
        """Report a measurement that is not one request (e.g. an idle connection that died)."""
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=elapsed_ms,
            response_length=0,
            response=None,
            exception=exception,
            context={"user": self.identity},
        )
