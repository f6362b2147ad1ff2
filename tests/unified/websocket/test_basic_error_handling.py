"""Core test 5: every bad input gets its error code and the same connection keeps working."""

from __future__ import annotations

from typing import Any

import pytest

from client import ProtocolError, State
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import CLIENT_TIMEOUT, Baseline, Clients, new_user, quiet

# (what is sent, code, field, id echoed): raw text goes out as is, a dict as JSON
CASES: dict[str, tuple[Any, str, str | None, Any]] = {
    "malformed-json": ("{not json", "bad_json", None, None),
    "truncated-json": ('{"type": "ping", "id": 1', "bad_json", None, None),
    "json-array": ("[1, 2, 3]", "bad_json", None, None),
    "json-string": ('"ping"', "bad_json", None, None),
    "empty-text": ("", "bad_json", None, None),
    "missing-type": ({"id": "m1", "data": 1}, "missing_field", "type", "m1"),
    "type-not-string": ({"type": 7, "id": "m2"}, "invalid_field", "type", "m2"),
    "unknown-type": ({"type": "teleport", "id": "m3"}, "unknown_type", None, "m3"),
    "id-not-string-or-int": ({"type": "ping", "id": [1]}, "invalid_field", "id", None),
    "id-float": ({"type": "ping", "id": 1.5}, "invalid_field", "id", None),
    "id-object": ({"type": "ping", "id": {"n": 1}}, "invalid_field", "id", None),
    "id-boolean": ({"type": "ping", "id": True}, "invalid_field", "id", None),
    "send-missing-to": ({"type": "send", "id": "m4", "data": 1}, "missing_field", "to", "m4"),
    "send-empty-to": ({"type": "send", "id": "m5", "to": "", "data": 1}, "invalid_field", "to", "m5"),
    "update-missing-base": ({"type": "update", "id": "m6", "patch": {}}, "missing_field", "base_version", "m6"),
    "update-negative-base": (
        {"type": "update", "id": "m7", "base_version": -1, "patch": {}},
        "invalid_field",
        "base_version",
        "m7",
    ),
    "update-string-base": (
        {"type": "update", "id": "m8", "base_version": "0", "patch": {}},
        "invalid_field",
        "base_version",
        "m8",
    ),
    "update-patch-not-object": (
        {"type": "update", "id": "m9", "base_version": 0, "patch": [1]},
        "invalid_field",
        "patch",
        "m9",
    ),
    "update-missing-patch": ({"type": "update", "id": "m10", "base_version": 0}, "missing_field", "patch", "m10"),
    "refresh-missing-token": ({"type": "refresh", "id": "m11"}, "missing_field", "token", "m11"),
    "refresh-token-not-string": ({"type": "refresh", "id": "m12", "token": 5}, "invalid_field", "token", "m12"),
}


def assert_still_working(client: Any, metrics: TestMetrics | None = None) -> None:
    pong = metrics.timed(client.ping) if metrics else client.ping()
    assert pong["type"] == "pong" and client.state is State.OPEN


@pytest.mark.parametrize("case", list(CASES))
def test_bad_message_gets_its_error_and_the_connection_keeps_working(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics, case: str
) -> None:
    sent, code, field, echoed_id = CASES[case]
    client = clients.open()
    assert_still_working(client, metrics)
    for _ in range(2):  # the second identical mistake is answered the same way
        client.send_raw(sent) if isinstance(sent, str) else client.send_json(sent)
        error = metrics.timed(client.next_push, CLIENT_TIMEOUT)
        assert error["type"] == "error" and error["code"] == code, error
        assert error.get("field") == field
        assert error.get("id") == echoed_id
        assert isinstance(error["message"], str) and error["message"]
        assert_still_working(client, metrics)
    assert quiet(client, 0.05) == []
    client.close()
    baseline.assert_restored()


def test_binary_frame_is_unsupported(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    client = clients.open()
    for payload in (b"\x00\x01binary", b'{"type":"ping","id":1}'):  # even JSON in a binary frame
        client.send_raw(payload)
        error = client.next_push(CLIENT_TIMEOUT)
        assert (error["type"], error["code"]) == ("error", "unsupported_frame")
        assert_still_working(client)
    client.close()
    baseline.assert_restored()


def test_errors_are_counted(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    client = clients.open()
    for text in ("{", "[]", '{"type":"nope"}'):
        client.send_raw(text)
        assert client.next_push(CLIENT_TIMEOUT)["type"] == "error"
    baseline.wait_delta("errors_sent", 3)
    client.close()


def test_handler_exception_is_internal_and_survivable(configured_server, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    srv = configured_server(faults="crash_on=echo")
    base = Baseline(srv)
    clients = Clients(srv)
    try:
        client = clients.open()
        for i in range(3):
            with pytest.raises(ProtocolError) as caught:
                client.echo(i)
            assert caught.value.code == "internal" and caught.value.frame["id"] is not None
            assert_still_working(client, metrics)
        user = new_user()
        assert client.send(user, "other types still work", id="s1")["seq"] == 1
        client.close()
    finally:
        clients.close_all()
    base.wait_delta("errors_sent", 3)
    base.assert_restored()


def test_oversize_message_closes_with_1009(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    client = clients.open()
    limit = client.welcome["limits"]["max_message_bytes"]  # type: ignore[index]
    head, tail = '{"type":"echo","id":"e","data":"', '"}'
    at_limit = head + "x" * (limit - len(head) - len(tail)) + tail
    assert len(at_limit.encode()) == limit
    client.send_raw(at_limit)
    assert client.next_push(CLIENT_TIMEOUT)["id"] == "e"  # exactly the limit is still fine
    client.send_raw(at_limit[:-2] + 'x"}')  # one byte over
    closed = client.wait_closed(CLIENT_TIMEOUT)
    assert closed.code == 1009
    assert client.state is State.CLOSED
    baseline.assert_restored()
