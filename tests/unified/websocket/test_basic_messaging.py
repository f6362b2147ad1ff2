"""Core test 2: JSON in both directions, acks, pushes, exact round trips, ping/pong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client import ProtocolError
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, collect, new_user, quiet, send

MESSAGES = 200  # enough that a 10-20% drop/duplicate fault cannot go unseen

PAYLOADS: dict[str, Any] = {
    "unicode": 'żółw ✓ 日本語 🚀🎉 مرحبا e\u0301 \u0000 \u2028 "quoted" \\ back',
    "nested": {
        "a": [1, 2.5, -3, None, True, False, {"b": {"c": [[], {}, [{"d": "e"}]]}}],
        "deep": {"x": {"y": {"z": [0]}}},
    },
    "numbers": [0, -1, 2**53 - 1, -(2**53) + 1, 1.5, -0.25, 1e-7, 12345.678],
    "empty": {"s": "", "l": [], "o": {}},
    "scalar_string": "just a string",
    "scalar_null": None,
    "deeply_nested": json.loads("[" * 60 + "1" + "]" * 60),
}


def _size(msg: dict[str, Any]) -> int:
    return len(json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode())


def padded(kind: str, limit: int, mid: str, fill: str, **fields: Any) -> dict[str, Any]:
    """A message of type `kind` whose compact UTF-8 JSON is as close to `limit` bytes as `fill` allows."""
    msg = {"type": kind, "id": mid, **fields, "data": ""}
    room = limit - _size(msg)
    msg["data"] = fill * (room // len(fill.encode()))
    assert limit - len(fill.encode()) < _size(msg) <= limit
    return msg


def test_json_client_to_server_ack_and_server_to_client(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    a, b = clients.open(alice), clients.open(bob)
    acks = []
    with metrics.measure(MESSAGES):
        for i in range(MESSAGES):
            ack = metrics.timed(send, a, bob, {"n": i, "text": f"hello {i}"}, f"{alice}:{i}")
            acks.append(ack)
        received = collect(b, MESSAGES)
    assert [ack["type"] for ack in acks] == ["ack"] * MESSAGES
    assert [ack["id"] for ack in acks] == [f"{alice}:{i}" for i in range(MESSAGES)]
    assert all(ack["queued"] is False for ack in acks)
    seqs = [ack["seq"] for ack in acks]
    assert seqs == list(range(seqs[0], seqs[0] + MESSAGES))
    assert len(received) == MESSAGES, f"bob got {len(received)} of {MESSAGES} acked messages"
    assert received == [
        {"type": "message", "seq": seq, "from": alice, "id": f"{alice}:{i}", "data": {"n": i, "text": f"hello {i}"}}
        for i, seq in enumerate(seqs)
    ]
    assert quiet(b) == [] and quiet(a, 0) == []  # nothing twice, nothing to the sender
    a.close(), b.close()
    baseline.assert_restored()


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_round_trips_exactly(server: ServerHandle, clients: Clients, metrics: TestMetrics, name: str) -> None:
    user, peer = new_user(), new_user()
    client, other = clients.open(user), clients.open(peer)
    data = PAYLOADS[name]
    reply = metrics.timed(client.echo, data)
    assert reply["type"] == "echo" and reply["data"] == data and isinstance(reply["ts"], int)
    assert json.dumps(reply["data"], sort_keys=True) == json.dumps(data, sort_keys=True)  # 1 vs 1.0 and order
    send(other, user, data)
    (message,) = collect(client, 1)
    assert message["data"] == data and message["from"] == peer


@pytest.mark.parametrize("fill", ["x", "é", "🚀"])
def test_near_limit_messages_round_trip_exactly(
    server: ServerHandle, clients: Clients, metrics: TestMetrics, fill: str
) -> None:
    user, peer = new_user(), new_user()
    client, other = clients.open(user), clients.open(peer)
    limit = client.welcome["limits"]["max_message_bytes"]  # type: ignore[index]
    for target in (limit, limit - 1, limit - 100):
        echo = padded("echo", target, client.next_id(), fill)
        reply = metrics.timed(client.request, echo)
        assert reply["data"] == echo["data"]
        message = padded("send", target, other.next_id(), fill, to=user)
        assert other.request(message)["type"] == "ack"
        (pushed,) = collect(client, 1)
        assert pushed["data"] == message["data"] and pushed["id"] == message["id"]
    assert client.ping()["type"] == "pong"


def test_ping_gets_pong_with_the_same_id(server: ServerHandle, clients: Clients, metrics: TestMetrics) -> None:
    client = clients.open()
    for mid in (1, 0, -7, 2**40, "p-1", "", "ü"):
        pong = metrics.timed(client.request, {"type": "ping", "id": mid})
        assert pong["type"] == "pong" and pong["id"] == mid and isinstance(pong["ts"], int)
    client.send_json({"type": "ping"})  # no id: still answered, as a push
    pong = client.next_push(3.0)
    assert pong["type"] == "pong" and "id" not in pong


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"type": "send", "id": "s1", "data": 1}, "missing_field", "to"),
        ({"type": "send", "id": "s2", "to": "", "data": 1}, "invalid_field", "to"),
        ({"type": "send", "id": "s3", "to": ["x"], "data": 1}, "invalid_field", "to"),
        ({"type": "echo", "id": 1.5, "data": 1}, "invalid_field", "id"),
        ({"type": "ping", "id": {"nested": 1}}, "invalid_field", "id"),
    ],
    ids=["send-without-to", "send-to-empty", "send-to-list", "float-id", "object-id"],
)
def test_bad_messages_get_errors_and_use_no_seq(
    server: ServerHandle, clients: Clients, baseline: Baseline, message: dict[str, Any], code: str, field: str
) -> None:
    user = new_user()
    client, peer = clients.open(user), clients.open()
    if _is_valid_id(message.get("id")):
        with pytest.raises(ProtocolError) as caught:
            client.request(message)
        error = caught.value.frame
        assert error["id"] == message["id"]
    else:
        client.send_json(message)  # an invalid id cannot be echoed: the error comes as a push
        error = client.next_push(3.0)
        assert "id" not in error
    assert (error["type"], error["code"], error.get("field")) == ("error", code, field)
    assert isinstance(error["message"], str) and error["message"]
    assert send(peer, user, "after")["seq"] == 1  # the refused message used no seq
    assert collect(client, 1)[0]["data"] == "after"
    client.close(), peer.close()
    baseline.assert_restored()


def test_send_without_id_is_refused(server: ServerHandle, clients: Clients) -> None:
    client = clients.open()
    client.send_json({"type": "send", "to": new_user(), "data": 1})
    error = client.next_push(3.0)
    assert (error["code"], error["field"]) == ("missing_field", "id")
    assert client.ping()["type"] == "pong"


def _is_valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
