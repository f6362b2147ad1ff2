"""What the ten core tests share: the target under test, clients, and bounded waiting.

The target is the embedded reference server unless SOCKETPROOF_TARGET_URL names an
external one (tokens are then minted with SOCKETPROOF_JWT_SECRET). SOCKETPROOF_FAULTS
is added to every embedded server, which is how the fault matrix runs this suite
against a broken server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from client import ConnectionClosed, ProtocolClient, ProtocolError, Timeout, default_secret, normalize_url
from tests.support.server import ServerHandle

ENV_TARGET = "SOCKETPROOF_TARGET_URL"
ENV_FAULTS = "SOCKETPROOF_FAULTS"

CLIENT_TIMEOUT = 3.0
"""Every reply wait in the core tests; short so a broken server fails fast, not hangs."""

CLEANUP_KEYS = ("connections", "users", "registry_entries")


def external_url() -> str | None:
    url = os.environ.get(ENV_TARGET, "").strip()
    return normalize_url(url) if url else None


def is_embedded(server: ServerHandle) -> bool:
    return server.process is not None


def env_faults() -> str:
    return os.environ.get(ENV_FAULTS, "").strip()


def with_env_faults(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings for an embedded server: the test's own faults plus SOCKETPROOF_FAULTS."""
    merged = dict(settings)
    faults = ",".join(part for part in (env_faults(), str(settings.get("faults") or "")) if part)
    if faults:
        merged["faults"] = faults
    return merged


def external_target(url: str) -> ServerHandle:
    """A handle on a server someone else runs (nothing to start or stop)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return ServerHandle(ws_url=url, http_url=urlunsplit((scheme, parts.netloc, "", "", "")), secret=default_secret())


def skip_reason(settings: dict[str, Any]) -> str:
    shown = ", ".join(f"{name}={value}" for name, value in sorted(settings.items()))
    return f"needs server setting {shown}; not possible against {ENV_TARGET}"


@dataclasses.dataclass(frozen=True)
class Target:
    """A server to test settings on, and the values of those settings it runs with."""

    server: ServerHandle
    settings: dict[str, Any]


FAST_ENOUGH: dict[str, float] = {
    "heartbeat_interval": 2.0,
    "heartbeat_timeout": 2.0,
    "queue_size": 200,
    "queue_ttl": 2.0,
}
"""The largest announced value of each setting at which a test that depends on it still runs in
seconds against an external target (a heartbeat test waits several intervals, an expiry test a
queue_ttl, a full-queue test sends queue_size messages)."""


def announced_settings(welcome: dict[str, Any]) -> dict[str, Any]:
    """The settings a welcome announces, named as the reference server's settings."""
    heartbeat = welcome.get("heartbeat") or {}
    limits = welcome.get("limits") or {}
    return {
        "heartbeat_interval": heartbeat.get("interval"),
        "heartbeat_timeout": heartbeat.get("timeout"),
        **{name: limits.get(name) for name in ("queue_size", "queue_ttl", "max_connections_per_user", "rate_limit")},
    }


def too_slow(announced: dict[str, Any], names: Iterable[str]) -> str | None:
    """Why a test that needs settings `names` cannot run fast against a target announcing
    `announced`, or None when it can."""
    names = list(names)
    bad = [
        name
        for name in names
        if not isinstance(announced.get(name), (int, float))
        or isinstance(announced.get(name), bool)
        or not 0 < announced[name] <= FAST_ENOUGH[name]
    ]
    if not bad:
        return None
    shown = ", ".join(f"{name}={announced.get(name)}" for name in names)
    needed = ", ".join(f"{name} <= {FAST_ENOUGH[name]:g}" for name in names)
    return f"{ENV_TARGET} announces {shown}; this test runs against it when {needed} (start it so to run it)"


def needs_queue(client: ProtocolClient, size: int) -> None:
    """Skip when the target's announced queue_size holds fewer than `size` messages (an external
    target started with a small queue, to run the full-queue test, cannot run this one)."""
    announced = ((client.welcome or {}).get("limits") or {}).get("queue_size")
    if isinstance(announced, int) and announced < size:
        pytest.skip(f"{ENV_TARGET} announces queue_size={announced}; this test needs queue_size >= {size}")


def new_user(tag: str = "u") -> str:
    """A user id no other test (or earlier run against an external server) uses."""
    return f"{tag}-{uuid.uuid4().hex[:12]}"


class Clients:
    """Opens ProtocolClients for one test and closes every one of them afterwards."""

    def __init__(self, server: ServerHandle) -> None:
        self.server = server
        self.opened: list[ProtocolClient] = []

    def make(
        self, user: str | None = None, *, server: ServerHandle | None = None, token: str | None = None, **kwargs: Any
    ) -> ProtocolClient:
        """A client that is not connected yet (token minted for `user` unless given)."""
        target = server or self.server
        user = user or new_user()
        kwargs.setdefault("timeout", CLIENT_TIMEOUT)
        client = ProtocolClient(target.ws_url, token=token if token is not None else target.token(user), **kwargs)
        self.opened.append(client)
        return client

    def track(self, client: ProtocolClient) -> ProtocolClient:
        """Close this hand-made client at the end too (even one a broken server let in by mistake)."""
        self.opened.append(client)
        return client

    def open(
        self,
        user: str | None = None,
        *,
        server: ServerHandle | None = None,
        token: str | None = None,
        last_seq: int | None = None,
        **kwargs: Any,
    ) -> ProtocolClient:
        client = self.make(user, server=server, token=token, **kwargs)
        client.connect(last_seq)
        return client

    def close_all(self) -> None:
        for client in self.opened:
            try:
                client.close()
            finally:
                client.drop()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


class Baseline:
    """The server's registry counters before a test, to prove they come back after it.

    On the embedded server the test first waits (briefly) for earlier tests' connections
    to be gone, so the baseline is exact; an external server is taken as it is.
    """

    _unsettled: set[str] = set()  # servers that once did not get back to zero: not waited for again

    def __init__(self, server: ServerHandle, settle: float = 1.0) -> None:
        self.server = server
        if is_embedded(server) and server.ws_url not in self._unsettled:
            if not wait_until(lambda: all(server.stats()[key] == 0 for key in CLEANUP_KEYS), settle):
                self._unsettled.add(server.ws_url)  # a leaking server: the tests will say so
        self.stats = server.stats()

    def delta(self, key: str) -> int:
        return int(self.server.stats()[key]) - int(self.stats[key])

    def wait_delta(self, key: str, expected: int, timeout: float = 2.0) -> dict[str, Any]:
        """Wait until counter `key` grew by exactly `expected` since the baseline."""
        last: dict[str, Any] = {}

        def reached() -> bool:
            last.update(self.server.stats())
            return int(last[key]) - int(self.stats[key]) == expected

        assert wait_until(reached, timeout), (
            f"/stats {key} grew by {int(last[key]) - int(self.stats[key])}, expected {expected}: {last}"
        )
        return last

    def assert_restored(self, timeout: float = 2.0, keys: Iterable[str] = CLEANUP_KEYS) -> dict[str, Any]:
        """connections/users/registry_entries are back at (or below) the baseline."""
        keys = tuple(keys)
        last: dict[str, Any] = {}

        def restored() -> bool:
            last.update(self.server.stats())
            return all(int(last[key]) <= int(self.stats[key]) for key in keys)

        if not wait_until(restored, timeout):
            grown = {key: (self.stats[key], last[key]) for key in keys if last[key] > self.stats[key]}
            raise AssertionError(f"server did not clean up within {timeout}s: (baseline, now) {grown}")
        return last


@contextlib.contextmanager
def on_own_server(server: ServerHandle) -> Iterator[tuple[Clients, Baseline]]:
    """Clients and a Baseline for a dedicated server (the fixtures serve the shared one): the
    clients are closed on the way out and, when the body passed, the baseline must come back."""
    baseline = Baseline(server)
    clients = Clients(server)
    try:
        yield clients, baseline
    finally:
        clients.close_all()
    baseline.assert_restored()


def collect(
    client: ProtocolClient, count: int, kind: str = "message", idle: float = 0.5, limit: float = 10.0
) -> list[dict[str, Any]]:
    """Pushes of type `kind`, until `count` arrived or none came for `idle` seconds.

    Other pushes are kept in `client.extra_pushes` (the test decides what they mean)."""
    got: list[dict[str, Any]] = []
    extra = client.__dict__.setdefault("extra_pushes", [])
    deadline = time.monotonic() + limit
    while len(got) < count and time.monotonic() < deadline:
        try:
            msg = client.next_push(idle)
        except (Timeout, ConnectionClosed):
            break
        (got if msg.get("type") == kind else extra).append(msg)
    return got


def quiet(client: ProtocolClient, wait: float = 0.15) -> list[dict[str, Any]]:
    """Whatever else arrives within `wait` seconds (expected: nothing)."""
    time.sleep(wait)
    return client.drain_pushes()


def send(client: ProtocolClient, to: str, data: Any, id: Any = None, attempts: int = 50) -> dict[str, Any]:
    """`send` that waits out `rate_limited` (the message was not processed, so resend)."""
    msg: dict[str, Any] = {"type": "send", "to": to, "data": data, "id": id if id is not None else client.next_id()}
    for _ in range(attempts):
        reply = client.request(msg, expected_errors=("rate_limited",))
        if reply.get("type") != "error":
            return reply
        time.sleep(0.05)
    raise ProtocolError("rate_limited", f"still rate limited after {attempts} attempts")


def apply_patch(state: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The protocol's shallow merge (a null value deletes the key)."""
    out = dict(state)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
