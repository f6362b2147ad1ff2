"""Property-based fuzzing of the sans-I/O core: `Hub.handle` under any input.

Whatever frame arrives (any JSON value, any bytes, any text, any field types), the
hub answers the sender with exactly one frame: a valid reply for the request type, or
an `error` with a documented code (never `internal`, which means a handler raised).
Nothing escapes, every frame is JSON-serialisable, and a refused message changes no
state: users, seqs, retention logs, state documents and connections are as before.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.auth import Claims
from server.config import load_settings
from server.core import Connection, Hub, Outbound

SECRET = "fuzz-secret-0123456789-0123456789-0123"
T0 = 1_700_000_000.0
TYPES = ["ping", "echo", "send", "refresh", "update", "sync"]
ERROR_CODES = {
    "bad_json", "missing_field", "invalid_field", "unknown_type", "unsupported_frame", "queue_full",
    "version_conflict", "invalid_token", "token_expired", "wrong_user", "rate_limited",
}
REPLY_TYPES = {
    "ping": "pong", "echo": "echo", "send": "ack", "refresh": "refreshed", "update": "ack", "sync": "snapshot",
}
# Counters that move on every frame or every refusal; everything else must not.
MOVING = {
    "messages_in", "messages_out", "errors_sent", "rate_limited", "auth_failures", "rejected_queue_full", "uptime_s",
}

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def tokens() -> st.SearchStrategy[Any]:
    def mint(user: str, exp: float, key: str = SECRET) -> str:
        return jwt.encode({"sub": user, "exp": exp}, key, algorithm="HS256")

    return st.sampled_from(
        [
            mint("alice", T0 + 7200),
            mint("bob", T0 + 7200),
            mint("alice", T0 - 10),
            mint("alice", T0 + 7200, key="another-secret-0123456789-0123456789"),
            "not.a.token",
            "",
        ]
    ) | json_values


field_values = {
    "id": st.one_of(st.text(max_size=6), st.integers(), json_values),
    "to": st.sampled_from(["alice", "bob", "carol", "full", ""]) | json_values,
    "data": json_values,
    "token": tokens(),
    "base_version": st.integers(min_value=-2, max_value=3) | json_values,
    "patch": st.dictionaries(st.text(max_size=4), json_values, max_size=3) | json_values,
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {}
    kind = draw(st.sampled_from(TYPES) | st.just(None) | json_values)
    if kind is not None or draw(st.booleans()):
        message["type"] = kind
    for name, values in field_values.items():
        if draw(st.booleans()):
            message[name] = draw(values)
    extra = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2))
    return {**extra, **message}


frames = st.one_of(
    messages().map(json.dumps),
    messages().map(lambda m: json.dumps(m, ensure_ascii=False)),
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from(["{", "[" * 5000 + "]" * 5000, '{"type": "echo", "data": ' + "[" * 3000 + "]" * 3000 + "}", "NaN"]),
)


def make_hub(**settings: Any) -> tuple[Hub, Connection, Connection]:
    config = load_settings({"jwt_secret": SECRET, "queue_size": 2, **settings}, environ={})
    hub = Hub(config, rng=random.Random(1), clock=lambda: T0)
    conns = []
    for user in ("alice", "bob"):
        assert hub.reserve(user)
        conn, _ = hub.open(Claims(user, T0 + 3600), None, T0)
        conns.append(conn)
    sender = conns[0]
    for n in range(2):  # user "full" has a full queue: sends to it are refused
        hub.handle(sender, json.dumps({"type": "send", "id": f"fill-{n}", "to": "full", "data": n}), T0)
    hub.handle(sender, json.dumps({"type": "update", "id": "u", "base_version": 0, "patch": {"k": 1}}), T0)
    return hub, conns[0], conns[1]


def state_of(hub: Hub) -> Any:
    """Everything a refused message must leave alone (the rate window and activity time aside)."""
    users = {}
    for name, record in hub.users.items():
        users[name] = (
            sorted(record.connections), record.reserved, record.last_seq, record.delivered_seq,
            record.expired_seq, [(e.seq, e.sender, repr(e.id), repr(e.data)) for e in record.log],
            record.held, record.version, copy.deepcopy(record.state), copy.deepcopy(record.previous),
        )
    conns = {cid: (c.user, c.token_exp, c.state) for cid, c in hub.connections.items()}
    stats = {k: v for k, v in hub.stats(T0).items() if k not in MOVING}
    return users, conns, stats


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def assert_handled(hub: Hub, conn: Connection, frame: str | bytes, now: float) -> None:
    before = state_of(hub)
    outbound = hub.handle(conn, frame, now)
    assert isinstance(outbound, list) and outbound
    for item in outbound:
        assert isinstance(item, Outbound)
        json.dumps(item.message)  # the transport must be able to send it
        assert all(target in hub.connections for target in item.targets)
    mine = [item.message for item in outbound if conn.id in item.targets and item.message.get("type") != "message"]
    assert len(mine) == 1, mine
    reply = mine[0]
    try:  # as the server reads it: standard JSON only (NaN and Infinity are bad_json, docs/protocol.md)
        request = json.loads(frame, parse_constant=_not_json) if isinstance(frame, str) else None
    except (ValueError, RecursionError):
        request = None
    if reply["type"] == "error":
        assert reply["code"] in ERROR_CODES, reply
        assert isinstance(reply["message"], str)
        after = state_of(hub)
        assert after == before, f"refused with {reply['code']} but the state changed"
    else:
        assert isinstance(request, dict)
        assert reply["type"] == REPLY_TYPES[request["type"]]
        if request["type"] == "echo":
            assert json.dumps(reply["data"], sort_keys=True) == json.dumps(request.get("data"), sort_keys=True)
    request_id = request.get("id") if isinstance(request, dict) else None
    valid_id = isinstance(request_id, (str, int)) and not isinstance(request_id, bool)
    if valid_id:
        assert reply.get("id") == request_id
    else:
        assert "id" not in reply


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=12))
def test_any_frame_gets_a_reply_or_an_error_and_refusals_change_nothing(batch: list[str | bytes]) -> None:
    hub, alice, bob = make_hub()
    for n, frame in enumerate(batch):
        assert_handled(hub, alice if n % 3 else bob, frame, T0 + n * 0.001)


@settings(max_examples=60, deadline=None)
@given(st.lists(messages().map(json.dumps), min_size=1, max_size=10))
def test_rate_limited_messages_change_nothing(batch: list[str]) -> None:
    hub, alice, _ = make_hub(rate_limit=3)
    alice.window_start, alice.window_count = T0, 3  # this second's budget is spent
    for frame in batch:
        before = state_of(hub)
        outbound = hub.handle(alice, frame, T0 + 0.5)
        codes = [item.message.get("code") for item in outbound]
        assert codes in (["rate_limited"], ["bad_json"], ["invalid_field"]), codes
        assert state_of(hub) == before


def test_accepted_messages_pass_the_same_checks() -> None:
    """The property holds on the accepted paths too (the fuzzing mostly hits refusals)."""
    hub, alice, bob = make_hub()
    assert_handled(hub, alice, json.dumps({"type": "send", "id": 1, "to": "bob", "data": [1, {"a": None}]}), T0)
    assert_handled(hub, alice, json.dumps({"type": "update", "id": "x", "base_version": 1, "patch": {"k": None}}), T0)
    assert_handled(hub, bob, json.dumps({"type": "echo", "data": "\ud800"}), T0)
    assert hub.users["bob"].last_seq == 1 and hub.users["alice"].version == 2
