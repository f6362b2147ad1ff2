"""`WebSocketUser`: a Locust user over the protocol-free client, shaped like locust/contrib/mqtt.py.

The client fires Locust's request event itself (true round trips matched by correlation
key, whatever the adapter); this user holds the connections of one identity, publishes
stamped messages, reports `deliver` from the stamps it receives, and records every
connection into the run's history. Flows (locustfiles/) say what to do and which
adapter capabilities they need (`needs`); a flow whose needs the adapter lacks is left
out of the run by the plugin, with one line saying why.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
from locust import User

from client import Client, ProtocolClient
from client.adapter import (
    BOUND_CHANNEL,
    RESUME,
    SERVER_SEQ,
    SUBSCRIBE,
    Delivery,
    SessionContext,
    Stamp,
    stamped_payload,
)
from client.errors import ConnectionClosed, SocketproofError
from client.transport import State
from socketproof.run import (
    clock,
    clock_sync,
    plugin,  # noqa: F401  (registers the plugin's listeners: every locustfile imports this)
)
from socketproof.run.backoff import Reconnects
from socketproof.run.context import RunContext
from socketproof.target import loopback
from socketproof.target.http_publish import HttpPublisher, PublishFailed
from socketproof.target.token_source import TokenRefused

F = TypeVar("F", bound=Callable[..., Any])

_RNG = random.Random()
"""One generator for all users of the process (they run on one thread): a Random per
user is 2.5 KB of Mersenne Twister state."""
if hasattr(os, "register_at_fork"):  # `locust --processes` forks: workers must not share a sequence
    os.register_at_fork(after_in_child=_RNG.seed)
BACKOFF_SLICE = 0.25
"""Seconds a reconnect wait sleeps between looks at the run's stop."""


def reported(task: F) -> F:
    """Failures are already in Locust's stats (the client fired them): do not let them also
    count as task exceptions; the next task reconnects if needed."""

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
    """Base for Socketproof users: connect, publish, measure, record. Subclasses write the flow."""

    abstract = True
    flow = "ws"
    needs: frozenset[str] = frozenset()
    """Adapter capabilities this flow cannot run without."""
    uses: frozenset[str] = frozenset({"subscribe", "publish"})
    """What this flow does on its connections, of client/adapter.py OPERATIONS: the pre-flight
    tries each once (those the adapter has) before any user starts. Joining (`open_client` with
    SUBSCRIBE) and `publish` by default; add "echo" for `request("echo")`; a flow that only
    listens says frozenset({"subscribe"})."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = RunContext.of(environment).state()
        self.options = self.shared.options
        self.adapter = self.shared.adapter
        self.rng = _RNG
        self.identity = self.shared.identity(self.flow)
        self.clients: list[Client] = []
        self.client: Client | None = None
        self.facts: dict[str, ConnectionFacts] = {}
        """Per open connection's label: what this user knows of it (see ConnectionFacts)."""
        self._counters: dict[tuple[str, str], int] | None = None  # per (sender, channel); made on first publish
        self.own_channel: str | None = None
        self.clock_offsets = clock_sync.offsets(environment)
        """Every process's clock offset (a worker's, from the master): times cross-process deliveries."""
        self.reconnects = Reconnects(self.options.reconnect_backoff, self.rng)
        """--reconnect-backoff: when this user may try to connect again (socketproof.run.backoff)."""

    def wait_time(self) -> float:
        """Pace by --send-interval, jittered so users do not march in step."""
        return self.options.send_interval * self.rng.uniform(0.5, 1.5)

    def has(self, capability: str) -> bool:
        return capability in self.adapter.capabilities

    # -- connections --------------------------------------------------------------

    def connection(self) -> Client:
        """This user's main connection, (re)opened when closed or gone silent; a RESUME
        adapter resumes after the last seq the old connection saw."""
        client = self.client
        if client is not None and client.state is State.OPEN:
            silence = self.silence(client)
            if silence is not None:
                self.report("liveness", silence * 1000.0, ConnectionClosed(None, f"no server ping for {silence:.1f}s"))
                self.close_client(client, abrupt=True)
        if client is None or client.state is not State.OPEN:
            resume = None
            if client is not None:
                resume = self.last_seq(client)
                self.close_client(client)
                self.reconnects.lost(time.monotonic())
            self.client = None
            self.client = self.reopen(resume_after=resume)
        return self.client

    def reopen(self, resume_after: Any = None) -> Client:
        """`open_client` after the reconnect policy's wait (none after an open connection was
        closed on purpose, or at the first connect); a failed attempt makes the next wait longer."""
        slices = int(self.reconnects.wait(time.monotonic()) / BACKOFF_SLICE) + 2
        for _ in range(slices):  # bounded: the wait is at most the policy's cap
            left = self.reconnects.wait(time.monotonic())
            if left <= 0:
                break
            if self.shared.stopping:  # never wait past the run's stop
                raise SocketproofError("the run is stopping: no reconnect")
            gevent.sleep(min(left, BACKOFF_SLICE))
        try:
            client = self.open_client(resume_after=resume_after)
        except Exception:
            self.reconnects.failed(time.monotonic())
            raise
        self.reconnects.opened()
        return client

    def silence(self, client: Client) -> float | None:
        """Seconds without a sign of life (start-up or heartbeat ping) when over 2 announced
        intervals + the timeout, else None: the server, or the path to it, is gone."""
        beat = client.ready.heartbeat if client.ready is not None else None
        if not beat or beat[0] <= 0:
            return None
        interval, timeout = beat
        pings = client.ping_times
        facts = self.facts.get(client.label)
        last = max(pings[-1] if pings else 0.0, facts.opened_at if facts is not None else 0.0)
        silence = time.time() - last
        return silence if last and silence > 2 * interval + timeout else None

    def ws_url(self) -> str:
        host = (self.host or self.environment.host or "").rstrip("/")
        if not host:
            raise SocketproofError("no host: pass --host ws://host:port or run without it for the embedded server")
        refused = loopback.refusal(self.environment.parsed_options, host)
        if refused is not None:  # before any token is made: a remote worker must not dial its own loopback
            raise SocketproofError(refused)
        return host + (self.options.ws_path or "")

    def token(self, identity: str | None = None, ttl: float = 3600.0) -> str:
        """From the run's one token source (socketproof/target/token_source.py: minted, a file, a login URL)."""
        return RunContext.of(self.environment).deployment().token(identity or self.identity, ttl)

    def recorder_for(self, identity: str, label: str) -> Any:
        """The history recorder of a new connection. Only bench/checks_overhead.py overrides it
        (returning None) to measure what recording costs; every real run records."""
        return self.shared.recorder.connection(identity, label)

    def new_client(self, identity: str, label: str, resume_after: Any = None) -> Client:
        """A recorded client of the run's adapter (ProtocolClient, with its verbs, for socketproof);
        a BOUND_CHANNEL adapter's connection is opened for the identity's room."""
        url = self.ws_url()  # first: a refused host gets no token made
        try:
            token = self.token(identity)
        except TokenRefused as error:  # a fetched token unsafe to send: a failed connect, and nothing sent
            self.report("connect", 0.0, error)
            raise
        hooks = self.recorder_for(identity, label)
        event = self.environment.events.request
        timeout = self.options.request_timeout
        if self.adapter.name == "socketproof":
            client: Client = ProtocolClient(url, token=token, recorder=hooks,
                                            request_event=event, timeout=timeout, user=identity, label=label,
                                            adapter=self.adapter)  # type: ignore[arg-type]
            client.context = SessionContext(identity, label, client.context.token, resume_after)
        else:
            bound = self.room(identity) if self.has(BOUND_CHANNEL) else None
            client = Client(url, self.adapter, SessionContext(identity, label, token, resume_after, bound),
                            hooks=hooks, request_event=event, timeout=timeout)
        RunContext.of(self.environment).deployment().apply(client, client.context.token)  # TLS, headers, origin, query
        facts = self.facts[label] = ConnectionFacts(self)
        client.on_delivery = facts
        client.on_push = facts.pushed
        return client

    def open_client(self, identity: str | None = None, resume_after: Any = None) -> Client:
        """Connect a new recorded client for `identity` (default: this user's); a SUBSCRIBE
        adapter joins the identity's room."""
        identity = identity or self.identity
        label = self.shared.label(identity)
        client = self.new_client(identity, label, resume_after)
        try:
            ready = Client.connect(client)
        except BaseException:
            self.facts.pop(label, None)
            raise
        facts = self.facts[label]
        facts.opened_at = time.time()
        resume = ready.resume
        if resume is not None and isinstance(resume.server_last, int):
            # what this connection counts as seen: the welcome's last seq covers the replay
            facts.last_seq = max(facts.last_seq or 0, resume.server_last)
        snapshot = ready.extra.get("snapshot") if ready.extra else None
        if isinstance(snapshot, dict) and isinstance(snapshot.get("version"), int):
            facts.version = snapshot["version"]
        rooms = self.has(SUBSCRIBE) or self.has(BOUND_CHANNEL)
        channel = self.room(identity) if rooms else (ready.channels or (identity,))[0]
        if identity == self.identity:
            self.own_channel = channel  # the server's name for us (a token's `sub` may differ from the identity)
        client.forget_start()  # read: an idle connection should not carry its welcome
        self.clients.append(client)
        facts.channel = channel
        self.shared.live.add(channel)
        if self.has(SUBSCRIBE):
            client.subscribe(channel)
        return client

    def close_client(self, client: Client, *, abrupt: bool = False) -> None:
        """Close (or drop) a connection and forget its per-connection state (a long run with
        many reconnects must not grow). Read `last_seq()` first to resume."""
        facts = self.facts.pop(client.label, None)
        channel = facts.channel if facts is not None else None
        if client in self.clients:
            self.clients.remove(client)
            if channel is not None:
                self.shared.live.remove(channel)
        try:
            client.drop() if abrupt else client.close()
        except SocketproofError:
            pass

    def last_seq(self, client: Client) -> int | None:
        """The highest server seq `client`'s connection saw (what a RESUME adapter resumes
        after); None before any, or once the connection is forgotten."""
        facts = self.facts.get(client.label)
        return facts.last_seq if facts is not None else None

    def tabs(self, count: int) -> list[Client]:
        """This identity's open connections ("tabs"): dead ones replaced, topped up to `count`."""
        dead = [c for c in self.clients if c.state is not State.OPEN]
        for tab in dead:
            self.close_client(tab)
        if dead:
            self.reconnects.lost(time.monotonic())
        while len(self.clients) < count:
            self.reopen()
        return self.clients

    def on_stop(self) -> None:
        for client in list(self.clients):
            self.close_client(client)
        self.client = None

    # -- channels and stamps ---------------------------------------------------------

    def room(self, identity: str | None = None) -> str:
        """The room an identity joins (SUBSCRIBE) or connects to (BOUND_CHANNEL): one of --rooms,
        by identity, the same on every reconnect and every tab."""
        identity = identity or self.identity
        return f"room-{sum(identity.encode()) % self.options.rooms}"

    def my_channel(self) -> str:
        """Where this user's own messages go: its room, or the channel the server named for it
        at start-up (its own user; the identity until a connection told us)."""
        if self.has(SUBSCRIBE) or self.has(BOUND_CHANNEL):
            return self.room()
        return self.own_channel or self.identity

    def peer_channel(self) -> str:
        """A channel some live connection here receives (a peer's user or room), else our own;
        a BOUND_CHANNEL connection reaches only its own room, so that is where it goes."""
        if self.has(BOUND_CHANNEL):
            return self.my_channel()
        return self.shared.live.pick(self.rng, self.my_channel())

    def publish(self, client: Client, channel: str, **kwargs: Any) -> Stamp:
        """Publish a stamped message (--message-bytes) to `channel`; the stamp counts the
        sender's messages to that channel from 1 with no gaps."""
        bound = client.context.channel if self.has(BOUND_CHANNEL) else None
        if bound is not None and channel != bound:  # a flow's mistake: the message would land elsewhere
            raise SocketproofError(f"this connection is bound to {bound!r} and cannot publish to {channel!r}")
        sender = Stamp.safe(client.label)
        key = (sender, channel)
        counters = self._counters
        if counters is None:
            counters = self._counters = {}
        counter = counters[key] = counters.get(key, 0) + 1
        stamp = Stamp(sender, channel, counter, clock.now())
        payload = stamped_payload(stamp, self.options.message_bytes)
        publisher = RunContext.of(self.environment).deployment().publisher
        if publisher is None:
            client.publish(channel, stamp, payload, **kwargs)
        else:
            self.publish_over_http(publisher, client, stamp, payload)
        return stamp

    def publish_over_http(self, publisher: HttpPublisher, client: Client, stamp: Stamp, payload: str) -> None:
        """--publish-url: the message goes through the service's backend; the stamp is recorded as
        this connection's publish (acked when the backend answers 2xx), so every check judges it."""
        hooks = client.hooks
        if hooks is not None:
            hooks.published(stamp, time.time())
        started = time.perf_counter()
        try:
            publisher.publish(stamp.channel, payload, client.context.token)
        except PublishFailed as error:
            if hooks is not None:
                hooks.publish_failed(stamp, str(error).split(":", 1)[0], time.time())
            self.report("publish", (time.perf_counter() - started) * 1000.0, error)
            raise SocketproofError(str(error)) from None
        if hooks is not None:
            hooks.acked(stamp, None, time.time())
        self.report("publish", (time.perf_counter() - started) * 1000.0)

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


class ConnectionFacts:
    """What a user knows of one of its connections: when it opened, the highest server seq
    seen (`last_seq`, None before any), the state version known, the channel it receives.
    It is also the client's `on_delivery`, and `pushed` its `on_push`. One slotted record
    rather than a dict entry per fact: a Locust process holds thousands of connections."""

    __slots__ = ("user", "opened_at", "last_seq", "version", "channel")

    def __init__(self, user: WebSocketUser) -> None:
        self.user = user
        self.opened_at = 0.0
        self.last_seq: int | None = None
        self.version = 0
        self.channel: str | None = None

    def __call__(self, delivery: Delivery) -> None:
        seq = delivery.seq
        if seq is not None and seq > (self.last_seq or 0):
            self.last_seq = seq
        stamp = delivery.stamp
        user = self.user
        if stamp is None or delivery.replay:
            return
        received = clock.now()
        shared = user.shared
        if shared.is_local(stamp.sender):
            latency: float | None = received - stamp.sent_at
        else:  # another process's clock: corrected by both offsets, left out while one is unknown
            latency = user.clock_offsets.latency(shared.process_tag, stamp.sender, stamp.sent_at, received)
            if latency is None:
                return
        user.report("deliver", max(0.0, latency * 1000.0))

    def pushed(self, body: Any) -> None:
        """Another tab's state update (socketproof `patch`) moves this tab's known version."""
        if isinstance(body, dict) and body.get("type") == "patch" and isinstance(body.get("version"), int):
            self.version = max(self.version, body["version"])


__all__ = ["RESUME", "SERVER_SEQ", "SUBSCRIBE", "ConnectionFacts", "WebSocketUser", "reported"]
