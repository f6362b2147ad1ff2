"""Core test 1: the WebSocket handshake, a working two-way channel, client states.

The handshake is checked at the byte level over a plain socket (so the Sec-WebSocket-Accept
check is ours, not a library's); the channel and the states through ProtocolClient.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest

from client import ConnectionClosed, HandshakeRejected, ProtocolClient, State
from client.hooks import NoHooks
from tests.support.rawws import OP_PING, OP_PONG, OP_TEXT, RawWebSocket, new_key, upgrade_headers
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import Baseline, Clients, collect, new_user, send

RFC6455_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def expected_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + RFC6455_GUID).encode()).digest()).decode()


def test_upgrade_handshake_follows_rfc6455(server: ServerHandle, baseline: Baseline, metrics: TestMetrics) -> None:
    user = new_user()
    key = new_key()
    with RawWebSocket(server.http_url, timeout=3.0) as raw:
        t0 = time.perf_counter()
        status, headers, _ = raw.request("/ws", upgrade_headers(server.token(user), key=key))
        assert status == 101
        assert headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in headers.get("connection", "").lower()
        assert headers.get("sec-websocket-accept") == expected_accept(key)
        welcome = raw.read_json()
        metrics.rtt((time.perf_counter() - t0) * 1000.0)
        assert (welcome["type"], welcome["user"]) == ("welcome", user)
        assert raw.read_json()["type"] == "snapshot"
        # client -> server (masked) and server -> client on the same socket
        for i in range(20):
            t0 = time.perf_counter()
            raw.send_frame(OP_TEXT, json.dumps({"type": "ping", "id": i}).encode())
            pong = raw.read_json()
            metrics.rtt((time.perf_counter() - t0) * 1000.0)
            assert (pong["type"], pong["id"]) == ("pong", i)
        raw.send_close(1000)
        frames, code = raw.frames_until_close(timeout=3.0)
        assert code == 1000 and all(opcode in (OP_PING, OP_PONG) for opcode, _ in frames), (code, frames)
        assert raw.eof_within(2.0), "the server must end TCP after the close handshake"
    baseline.assert_restored()


def test_client_goes_connecting_open_closed_over_a_two_way_channel(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user, peer = new_user(), new_user()
    seen: list[State] = []

    class StateRecorder(NoHooks):
        """Recorder hooks run inside connect(): the state then must be CONNECTING."""

        def opened(self, t: float, **info: Any) -> None:
            seen.append(client.state)

        def closed(self, code: int | None, reason: str, initiator: str, t: float) -> None:
            seen.append(client.state)

    client = clients.make(user, recorder=StateRecorder())
    assert client.state is State.CLOSED
    session = client.connect()
    seen.append(client.state)
    assert session.welcome["user"] == user
    assert client.handshake_response is not None and client.handshake_response.status == 101

    with metrics.measure(100):
        for i in range(100):  # client -> server -> client
            assert metrics.timed(client.echo, {"i": i})["data"] == {"i": i}
    other = clients.open(peer)
    for i in range(3):  # server -> client pushes nobody asked for
        assert send(other, user, {"n": i})["queued"] is False
    assert [m["data"] for m in collect(client, 3)] == [{"n": 0}, {"n": 1}, {"n": 2}]

    closed = client.close()
    assert closed.code == 1000
    assert seen == [State.CONNECTING, State.OPEN, State.CLOSED]
    assert client.state is State.CLOSED
    with pytest.raises(ConnectionClosed):
        client.ping()
    other.close()
    baseline.assert_restored()


def test_wrong_path_is_404(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    with RawWebSocket(server.http_url, timeout=3.0) as raw:
        status, headers, body = raw.request("/not-ws", upgrade_headers(server.token(new_user()), key=new_key()))
    assert status == 404 and "sec-websocket-accept" not in headers
    assert json.loads(body)["error"] == "not_found"
    wrong = clients.track(
        ProtocolClient(server.ws_url.rsplit("/ws", 1)[0] + "/nope", token=server.token(new_user()), timeout=3.0)
    )
    with pytest.raises(HandshakeRejected) as caught:
        wrong.connect()
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert wrong.state is State.CLOSED
    baseline.assert_restored()


def test_plain_get_on_ws_is_400_not_websocket(server: ServerHandle, baseline: Baseline) -> None:
    status, body = server.get("/ws", server.token(new_user()))
    assert status == 400
    assert isinstance(body, dict) and body["error"] == "not_websocket" and body.get("message")
    baseline.assert_restored()


@pytest.mark.parametrize("version", ["12", "8", "14", ""])
def test_bad_websocket_version_is_426(server: ServerHandle, baseline: Baseline, version: str) -> None:
    with RawWebSocket(server.http_url, timeout=3.0) as raw:
        sent = upgrade_headers(server.token(new_user()), key=new_key(), version=version)
        status, headers, body = raw.request("/ws", sent)
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    assert json.loads(body)["error"] == "unsupported_version"
    baseline.assert_restored()


def test_missing_key_is_400_bad_handshake(server: ServerHandle, baseline: Baseline) -> None:
    with RawWebSocket(server.http_url, timeout=3.0) as raw:
        status, headers, body = raw.request("/ws", upgrade_headers(server.token(new_user()), key=None))
    assert status == 400 and "sec-websocket-accept" not in headers
    assert json.loads(body)["error"] == "bad_handshake"
    baseline.assert_restored()
