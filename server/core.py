"""The protocol core: all of docs/protocol.md's rules, with no socket in sight.

`Hub` holds the server's state (users, connections, queues, state documents).
`Hub.handle(connection, frame, now)` turns one received frame into the frames to send,
as `Outbound(targets, message)`; the transport only moves them. Time comes in as `now`
and randomness (for fault switches) from an injected `random.Random`, so every branch
is a plain unit test.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import itertools
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable
from typing import Any

from server.auth import AuthError, Claims, verify_token
from server.config import Settings

log = logging.getLogger("socketproof.server")

PROTOCOL_VERSION = 1

# Close codes the server uses (docs/protocol.md section 10).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_HEARTBEAT = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TOKEN_EXPIRED = 4001


class State(enum.Enum):
    """Life of a connection as the core sees it."""

    OPEN = "open"
    CLOSED = "closed"


@dataclasses.dataclass(frozen=True, slots=True)
class Outbound:
    """One frame to send to one or more connections (serialised once by the transport)."""

    targets: tuple[str, ...]
    message: dict[str, Any]


class RequestError(Exception):
    """A client message is refused; becomes an `error` frame, connection stays open."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


@dataclasses.dataclass(slots=True)
class Entry:
    """A message accepted for a user: kept in its retention log."""

    seq: int
    sender: str
    id: Any
    data: Any
    accepted_at: float
    size: int = 0
    """What it counts against max_retained_bytes (Hub.retained_bytes)."""

    def frame(self) -> dict[str, Any]:
        return {"type": "message", "seq": self.seq, "from": self.sender, "id": self.id, "data": self.data}


@dataclasses.dataclass(slots=True)
class Connection:
    """What the core knows of one open WebSocket connection."""

    id: str
    user: str
    token_exp: float
    opened_at: float
    state: State = State.OPEN
    window_start: float = 0.0
    window_count: int = 0


@dataclasses.dataclass(slots=True)
class UserRecord:
    """Everything the server keeps per user: connections, seqs, retention log, state document."""

    name: str
    connections: dict[str, Connection] = dataclasses.field(default_factory=dict)
    reserved: int = 0
    last_seq: int = 0
    delivered_seq: int = 0
    expired_seq: int = 0
    log: collections.deque[Entry] = dataclasses.field(default_factory=collections.deque)
    held: Entry | None = None
    version: int = 0
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    previous: tuple[int, dict[str, Any]] = (0, {})
    last_activity: float = 0.0

    def undelivered(self) -> int:
        return self.last_seq - max(self.delivered_seq, self.expired_seq)


@dataclasses.dataclass
class Counters:
    expired_messages: int = 0
    rejected_queue_full: int = 0
    rejected_retention_full: int = 0
    heartbeat_timeouts: int = 0
    auth_failures: int = 0
    errors_sent: int = 0
    rate_limited: int = 0
    messages_in: int = 0
    messages_out: int = 0


ENTRY_OVERHEAD = 128
"""Bytes each retained message counts beyond its `send` frame's length (docs/protocol.md section 6)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: Python reads Infinity, which JSON cannot carry
        raise ValueError(f"{text} is out of the range of a JSON number")
    return number


def parse_json(text: str) -> Any:
    """Standard JSON only: NaN, Infinity and numbers that overflow to them are refused, so the
    server never relays what a browser's JSON.parse rejects."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


_SURROGATE = re.compile("[\ud800-\udfff]")


def frame_bytes(message: dict[str, Any]) -> int:
    """Size of `message` as the transport sends it: UTF-8 JSON, a lone surrogate as a 6-byte escape."""
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass")) + 3 * len(_SURROGATE.findall(text))


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reply(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """A reply carries the request's `id` when it had one (and only then)."""
    request_id = request.get("id")
    if request_id is not None:
        reply["id"] = request_id
    return reply


def _error_frame(code: str, message: str, request_id: Any = None, **extra: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        frame["id"] = request_id
    frame.update(extra)
    return frame


class Hub:
    """The server's whole protocol state and the rules that change it."""

    def __init__(
        self,
        settings: Settings,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.faults = settings.faults
        self.rng = rng or random.Random()
        self.started_at = clock()
        self.users: dict[str, UserRecord] = {}
        self.connections: dict[str, Connection] = {}
        self.counters = Counters()
        self.retained_bytes = 0
        """Sum of Entry.size over every retention log, bounded by max_retained_bytes."""
        self._frame_size = 0  # length of the frame being handled: what a send's entry counts
        self._bound_swept_at = float("-inf")
        self._ids = itertools.count(1)
        self._handlers: dict[str, Callable[[Connection, dict[str, Any], float], list[Outbound]]] = {
            "ping": self._ping,
            "echo": self._echo,
            "send": self._send,
            "refresh": self._refresh,
            "update": self._update,
            "sync": self._sync,
        }

    # -- connection life -------------------------------------------------

    def authenticate(self, token: str | None, now: float) -> Claims:
        """Check a handshake token; counts refusals."""
        try:
            return verify_token(token, self.settings, now)
        except AuthError:
            self.counters.auth_failures += 1
            raise

    def reserve(self, user: str) -> bool:
        """Hold a connection slot for `user` during the handshake; False at the limit."""
        record = self._record(user)
        if len(record.connections) + record.reserved >= self.settings.max_connections_per_user:
            return False
        record.reserved += 1
        return True

    def release(self, user: str) -> None:
        """Give back a slot whose handshake did not complete."""
        record = self.users.get(user)
        if record is not None and record.reserved > 0:
            record.reserved -= 1

    def open(self, claims: Claims, last_seq: int | None, now: float) -> tuple[Connection, list[Outbound]]:
        """Register a connection (its slot was reserved) and return welcome, snapshot and replay."""
        record = self._record(claims.user)
        record.reserved = max(0, record.reserved - 1)
        record.last_activity = now
        self._expire(record, now)
        conn = Connection(id=f"c{next(self._ids)}", user=claims.user, token_exp=claims.exp, opened_at=now)
        conn.window_start = now
        self.connections[conn.id] = conn
        record.connections[conn.id] = conn

        gap: dict[str, Any] | None = None
        if last_seq is not None and last_seq > record.last_seq:
            # The server has forgotten what the client saw (restart or expiry): say so.
            gap = {"from": last_seq + 1, "to": None}
            start = record.delivered_seq
        else:
            start = record.delivered_seq if last_seq is None else last_seq
        replay = [entry for entry in record.log if entry.seq > start]
        if gap is None:
            first_available = replay[0].seq if replay else record.last_seq + 1
            if first_available > start + 1:
                gap = {"from": start + 1, "to": first_available - 1}
        record.delivered_seq = record.last_seq
        frames = self._replay_frames(replay)
        welcome = {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "conn_id": conn.id,
            "user": conn.user,
            "heartbeat": {
                "interval": self.settings.heartbeat_interval,
                "timeout": self.settings.heartbeat_timeout,
            },
            "limits": {
                "max_connections_per_user": self.settings.max_connections_per_user,
                "max_message_bytes": self.settings.max_message_bytes,
                "queue_size": self.settings.queue_size,
                "queue_ttl": self.settings.queue_ttl,
                "rate_limit": self.settings.rate_limit,
            },
            "last_seq": record.last_seq,
            "replay": len(frames),
            "resumed": last_seq is not None and gap is None,
            "gap": gap,
            "token_exp": conn.token_exp,
        }
        to_conn = (conn.id,)
        outbound = [Outbound(to_conn, welcome), Outbound(to_conn, self._snapshot(record))]
        outbound.extend(Outbound(to_conn, frame) for frame in frames)
        self._count_out(outbound)
        return conn, outbound

    def _replay_frames(self, replay: list[Entry]) -> list[dict[str, Any]]:
        """The replay's `message` frames; the replay_* fault switches touch only these."""
        frames = [entry.frame() for entry in replay]
        faults = self.faults
        if faults.replay_reorder and len(frames) >= 2:
            frames[0], frames[1] = frames[1], frames[0]
        if faults.replay_drop and frames:
            del frames[0]
        if faults.replay_duplicate and frames:
            frames.insert(1, dict(frames[0]))
        return frames

    def close(self, conn: Connection, now: float) -> None:
        """Forget a connection that ended, however it ended."""
        if conn.state is State.CLOSED:
            return
        conn.state = State.CLOSED
        if self.faults.leak_connections:
            return
        self.connections.pop(conn.id, None)
        record = self.users.get(conn.user)
        if record is not None:
            record.connections.pop(conn.id, None)
            record.last_activity = now

    def heartbeat_timeout(self) -> None:
        self.counters.heartbeat_timeouts += 1

    # -- messages ---------------------------------------------------------

    def handle(self, conn: Connection, frame: str | bytes, now: float) -> list[Outbound]:
        """Turn one received frame into the frames to send; never raises."""
        self.counters.messages_in += 1
        request_id = None
        try:
            if not isinstance(frame, str):
                raise RequestError("unsupported_frame", "binary frames are not supported; send JSON text")
            self._frame_size = len(frame)
            try:
                message = parse_json(frame)
            except ValueError as error:
                raise RequestError("bad_json", f"not valid JSON: {error}") from None
            except RecursionError:  # e.g. "[[[[...": hostile input, not a server failure
                raise RequestError("bad_json", "not valid JSON: nested too deeply") from None
            if not isinstance(message, dict):
                raise RequestError("bad_json", "a message must be a JSON object")
            request_id = message.get("id")
            if request_id is not None and not _is_id(request_id):
                request_id = None
                raise RequestError("invalid_field", "'id' must be a string or an integer", field="id")
            if self._over_rate(conn, now):
                self.counters.rate_limited += 1
                raise RequestError(
                    "rate_limited", f"more than {self.settings.rate_limit} messages in one second"
                )
            kind = message.get("type")
            if kind is None:
                raise RequestError("missing_field", "'type' is required", field="type")
            if not isinstance(kind, str):
                raise RequestError("invalid_field", "'type' must be a string", field="type")
            handler = self._handlers.get(kind)
            if handler is None:
                raise RequestError("unknown_type", f"unknown message type {kind!r}")
            if self.faults.crash_on == kind:
                raise RuntimeError(f"fault crash_on={kind}")
            outbound = handler(conn, message, now)
        except RequestError as error:
            outbound = [Outbound((conn.id,), _error_frame(error.code, error.message, request_id, **error.extra))]
            self.counters.errors_sent += 1
        except Exception:
            log.exception("handler failed on connection %s", conn.id)
            frame_out = _error_frame("internal", "the server failed to handle this message", request_id)
            outbound = [Outbound((conn.id,), frame_out)]
            self.counters.errors_sent += 1
        self._count_out(outbound)
        return outbound

    def _over_rate(self, conn: Connection, now: float) -> bool:
        limit = self.settings.rate_limit
        if not limit:
            return False
        if now - conn.window_start >= 1.0:
            conn.window_start = now
            conn.window_count = 0
        conn.window_count += 1
        return conn.window_count > limit

    def _ping(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        return [Outbound((conn.id,), _reply(message, {"type": "pong", "ts": int(now * 1000)}))]

    def _echo(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        reply = _reply(message, {"type": "echo", "data": message.get("data"), "ts": int(now * 1000)})
        return [Outbound((conn.id,), reply)]

    def _send(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        request_id = message.get("id")
        if request_id is None:
            raise RequestError("missing_field", "'id' is required for send", field="id")
        to = message.get("to")
        if to is None:
            raise RequestError("missing_field", "'to' is required", field="to")
        if not isinstance(to, str) or not to:
            raise RequestError("invalid_field", "'to' must be a non-empty user id", field="to")
        size = self._frame_size + ENTRY_OVERHEAD
        self._check_retention(to, size, now)
        record = self._record(to)
        live = bool(record.connections)
        self._expire(record, now)
        if (
            not live
            and not self.faults.queue_unbounded
            and record.undelivered() >= self.settings.queue_size
        ):
            self.counters.rejected_queue_full += 1
            raise RequestError(
                "queue_full", f"the queue of user {to!r} is full ({self.settings.queue_size} messages)"
            )
        record.last_seq += 1
        entry = Entry(record.last_seq, conn.user, request_id, message.get("data"), now, size)
        record.log.append(entry)
        self.retained_bytes += size
        record.last_activity = now
        if not self.faults.queue_unbounded:
            while len(record.log) > self.settings.queue_size:
                self.retained_bytes -= record.log.popleft().size
        outbound = [Outbound((conn.id,), {"type": "ack", "id": request_id, "seq": entry.seq, "queued": not live})]
        if live:
            record.delivered_seq = entry.seq
            outbound.extend(self._deliver(record, entry))
        return outbound

    def _check_retention(self, to: str, size: int, now: float) -> None:
        """Refuse a send that would pass max_retained_users (a new recipient) or max_retained_bytes,
        after one sweep: made-up recipients and big messages must not grow memory without bound."""
        settings = self.settings
        new_user = to not in self.users
        if not (new_user and len(self.users) >= settings.max_retained_users) and (
            self.retained_bytes + size <= settings.max_retained_bytes
        ):
            return
        if now - self._bound_swept_at >= 1.0:  # at most one sweep a second: a flood must not buy a scan each
            self._bound_swept_at = now
            self.sweep(now)
        if new_user and len(self.users) >= settings.max_retained_users:
            self.counters.rejected_retention_full += 1
            raise RequestError(
                "retention_full",
                f"the server already keeps {len(self.users)} users (max_retained_users); try again later",
            )
        if self.retained_bytes + size > settings.max_retained_bytes:
            self.counters.rejected_retention_full += 1
            raise RequestError(
                "retention_full",
                f"the server's retained messages would pass {settings.max_retained_bytes} bytes "
                "(max_retained_bytes); try again later",
            )

    def _deliver(self, record: UserRecord, entry: Entry) -> list[Outbound]:
        """Frames that carry `entry` to every live connection of its user (fault switches apply)."""
        faults, rng = self.faults, self.rng
        if faults.drop and rng.random() < faults.drop:
            return []
        if faults.reorder and record.held is None and rng.random() < faults.reorder:
            record.held = entry
            return []
        targets = tuple(record.connections)
        out = [Outbound(targets, entry.frame())]
        if faults.duplicate and rng.random() < faults.duplicate:
            out.append(Outbound(targets, entry.frame()))
        if record.held is not None:
            out.append(Outbound(targets, record.held.frame()))
            record.held = None
        return out

    def _refresh(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        token = message.get("token")
        if token is None:
            raise RequestError("missing_field", "'token' is required", field="token")
        if not isinstance(token, str):
            raise RequestError("invalid_field", "'token' must be a string", field="token")
        try:
            claims = self.authenticate(token, now)
        except AuthError as error:
            # An empty token is an invalid one: section 7 has no `missing_token` error frame.
            code = "invalid_token" if error.code == "missing_token" else error.code
            raise RequestError(code, error.message) from None
        if claims.user != conn.user:
            self.counters.auth_failures += 1
            raise RequestError("wrong_user", f"token is for {claims.user!r}, this connection is {conn.user!r}")
        conn.token_exp = claims.exp
        return [Outbound((conn.id,), _reply(message, {"type": "refreshed", "exp": claims.exp}))]

    def _update(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        base = message.get("base_version")
        patch = message.get("patch")
        if base is None:
            raise RequestError("missing_field", "'base_version' is required", field="base_version")
        if not _is_int(base) or base < 0:
            raise RequestError("invalid_field", "'base_version' must be an integer >= 0", field="base_version")
        if patch is None:
            raise RequestError("missing_field", "'patch' is required", field="patch")
        if not isinstance(patch, dict):
            raise RequestError("invalid_field", "'patch' must be an object", field="patch")
        record = self._record(conn.user)
        record.last_activity = now
        if base != record.version:
            raise RequestError(
                "version_conflict",
                f"base_version {base} is not the current version {record.version}",
                current_version=record.version,
            )
        state = dict(record.state)
        for key, value in patch.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        limit = self.settings.max_message_bytes
        snapshot_bytes = frame_bytes({"type": "snapshot", "version": record.version + 1, "state": state})
        if snapshot_bytes > limit:
            raise RequestError(
                "state_too_large",
                f"the state document would be {snapshot_bytes} bytes as a snapshot, over max_message_bytes "
                f"({limit}); it is unchanged",
                current_version=record.version,
            )
        record.previous = (record.version, record.state)
        record.state = state
        record.version += 1
        outbound = [Outbound((conn.id,), _reply(message, {"type": "ack", "version": record.version}))]
        others = tuple(cid for cid in record.connections if cid != conn.id)
        if others:
            outbound.append(Outbound(others, {"type": "patch", "version": record.version, "patch": patch}))
        return outbound

    def _sync(self, conn: Connection, message: dict[str, Any], now: float) -> list[Outbound]:
        return [Outbound((conn.id,), _reply(message, self._snapshot(self._record(conn.user))))]

    def _snapshot(self, record: UserRecord) -> dict[str, Any]:
        version, state = record.version, record.state
        if self.faults.stale_snapshot and version > 0:
            version, state = record.previous
        return {"type": "snapshot", "version": version, "state": dict(state)}

    # -- housekeeping -----------------------------------------------------

    def _record(self, user: str) -> UserRecord:
        record = self.users.get(user)
        if record is None:
            record = self.users[user] = UserRecord(user)
        return record

    def _expire(self, record: UserRecord, now: float) -> None:
        """Drop retained messages older than queue_ttl; count the undelivered ones."""
        if self.faults.no_queue_expiry:
            return
        deadline = now - self.settings.queue_ttl
        log_ = record.log
        while log_ and log_[0].accepted_at <= deadline:
            entry = log_.popleft()
            self.retained_bytes -= entry.size
            if entry.seq > record.delivered_seq:
                self.counters.expired_messages += 1
                record.expired_seq = entry.seq  # gone for good: no longer waiting

    def sweep(self, now: float) -> None:
        """Expire queues and forget idle users; bounded by the number of users."""
        ttl = self.settings.queue_ttl
        for name in list(self.users):
            record = self.users[name]
            self._expire(record, now)
            if (
                not record.connections
                and not record.reserved
                and not record.log
                and now - record.last_activity >= ttl
            ):
                del self.users[name]

    def stats(self, now: float) -> dict[str, Any]:
        """The /stats document (docs/protocol.md section 11)."""
        self.sweep(now)
        live_users = sum(1 for record in self.users.values() if record.connections)
        counters = dataclasses.asdict(self.counters)
        return {
            "connections": len(self.connections),
            "users": live_users,
            "registry_entries": len(self.connections) + live_users,
            "retained_users": len(self.users),
            "queued_messages": sum(record.undelivered() for record in self.users.values()),
            "retained_messages": sum(len(record.log) for record in self.users.values()),
            "retained_bytes": self.retained_bytes,
            **counters,
            "uptime_s": round(now - self.started_at, 3),
            "faults": self.faults.active(),
        }

    def _count_out(self, outbound: list[Outbound]) -> None:
        self.counters.messages_out += sum(len(item.targets) for item in outbound)
