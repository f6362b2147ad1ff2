"""The real server over real sockets: handshake rejections, operations endpoints, heartbeat, closing.

One server is shared by the module where tests do not disturb each other; tests that
need their own settings or stop the server start their own. Raw sockets are used where
a WebSocket library would hide what is being checked (close handshake, half-open peer).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from tests.support import rawws
from tests.support.rawws import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT
from tests.support.server import ServerHandle, running_server

ORIGIN = "http://allowed.test"
INTERVAL = 0.5
TIMEOUT = 0.5
SHARED = {
    "heartbeat_interval": INTERVAL,
    "heartbeat_timeout": TIMEOUT,
    "max_connections_per_user": 2,
    "max_message_bytes": 1024,
    "allowed_origins": ORIGIN,
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(**SHARED) as handle:
        yield handle


# -- helpers ---------------------------------------------------------------------------


def upgrade_headers(token: str | None = None, **changes: str | None) -> dict[str, str]:
    """The shared upgrade headers, with this module's allowed Origin unless a test changes it."""
    changes.setdefault("origin", ORIGIN)
    return rawws.upgrade_headers(token, **changes)


def http_request(
    server: ServerHandle, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, Any]:
    """One HTTP request on its own connection; returns (status, headers, parsed JSON body)."""
    host, port = rawws.address(server.http_url)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, response.headers, json.loads(body) if body else None
    finally:
        conn.close()


def assert_rejected(
    server: ServerHandle, path: str, headers: dict[str, str], status: int, code: str
) -> http.client.HTTPMessage:
    got_status, got_headers, body = http_request(server, path, headers)
    assert (got_status, body and body.get("error")) == (status, code), body
    assert set(body) == {"error", "message"} and isinstance(body["message"], str) and body["message"]
    assert got_headers.get_content_type() == "application/json"
    assert got_headers.get("Upgrade") is None
    return got_headers


def connect(server: ServerHandle, user: str, query: str = "", **options: Any) -> websocket.WebSocket:
    options.setdefault("header", [f"Authorization: Bearer {server.token(user)}"])
    options.setdefault("origin", ORIGIN)
    return websocket.create_connection(server.ws_url + query, timeout=5, **options)


def recv_json(ws: websocket.WebSocket) -> dict[str, Any]:
    return json.loads(ws.recv())


def welcome(ws: websocket.WebSocket) -> dict[str, Any]:
    first, second = recv_json(ws), recv_json(ws)
    assert first["type"] == "welcome" and second["type"] == "snapshot"
    return first


def close_code(ws: websocket.WebSocket, deadline: float = 5.0) -> tuple[int, str]:
    """Read (answering pings) until the server's close frame; return its code and reason."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == OP_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0], frame.data[2:].decode()
    raise AssertionError("no close frame")


def raw_client(server: ServerHandle, token: str) -> rawws.RawWebSocket:
    """An upgraded raw socket (a context manager) from an allowed Origin."""
    return rawws.open_websocket(server.ws_url, token, origin=ORIGIN, timeout=5)


# -- handshake ---------------------------------------------------------------------------


def test_connect_with_header_or_query_token(server: ServerHandle) -> None:
    ws = connect(server, "hs-alice")
    try:
        first = welcome(ws)
        assert first["user"] == "hs-alice" and first["heartbeat"] == {"interval": INTERVAL, "timeout": TIMEOUT}
        ws.send(json.dumps({"type": "echo", "id": 1, "data": {"x": [1, "é"]}}))
        assert recv_json(ws)["data"] == {"x": [1, "é"]}
    finally:
        ws.close()
    ws = connect(server, "", query=f"?token={server.token('hs-bob')}", header=[])
    try:
        assert welcome(ws)["user"] == "hs-bob"
    finally:
        ws.close()


def test_header_token_wins_over_query(server: ServerHandle) -> None:
    ws = connect(server, "hs-carol", query="?token=garbage")
    try:
        assert welcome(ws)["user"] == "hs-carol"
    finally:
        ws.close()
    headers = upgrade_headers(token="garbage")
    assert_rejected(server, f"/ws?token={server.token('hs-carol')}", headers, 401, "invalid_token")


def test_plain_get_is_not_websocket(server: ServerHandle) -> None:
    assert_rejected(server, "/ws", {}, 400, "not_websocket")
    assert_rejected(server, "/ws", {"Upgrade": "websocket"}, 400, "not_websocket")


def test_unsupported_version_is_426_with_the_supported_version(server: ServerHandle) -> None:
    old_version = upgrade_headers(server.token("u"), version="12")
    headers = assert_rejected(server, "/ws", old_version, 426, "unsupported_version")
    assert headers.get("Sec-WebSocket-Version") == "13"
    assert_rejected(server, "/ws", upgrade_headers(server.token("u"), version=None), 426, "unsupported_version")


def test_missing_key_is_bad_handshake(server: ServerHandle) -> None:
    assert_rejected(server, "/ws", upgrade_headers(server.token("u"), key=None), 400, "bad_handshake")


def test_origin_not_allowed(server: ServerHandle) -> None:
    evil = upgrade_headers(server.token("u"), origin="http://evil.test")
    assert_rejected(server, "/ws", evil, 403, "origin_not_allowed")
    assert_rejected(server, "/ws", upgrade_headers(server.token("u"), origin=None), 403, "origin_not_allowed")


def test_token_rejections(server: ServerHandle) -> None:
    before = server.stats()["auth_failures"]
    assert_rejected(server, "/ws", upgrade_headers(), 401, "missing_token")
    assert_rejected(server, "/ws", upgrade_headers("not-a-jwt"), 401, "invalid_token")
    forged = ServerHandle(ws_url="", http_url="", secret="some-other-secret-0123456789-0123").token("u")
    assert_rejected(server, "/ws", upgrade_headers(forged), 401, "invalid_token")
    assert_rejected(server, "/ws", upgrade_headers(server.token("u", ttl=-5)), 401, "token_expired")
    assert server.stats()["auth_failures"] == before + 4


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "%C2%B2", "%D9%A1", "+1", "%201"])
def test_bad_last_seq_is_invalid_field(server: ServerHandle, value: str) -> None:
    assert_rejected(server, f"/ws?last_seq={value}", upgrade_headers(server.token("u")), 400, "invalid_field")


def test_rejections_are_checked_in_the_documented_order(server: ServerHandle) -> None:
    assert_rejected(
        server,
        "/ws?last_seq=x",
        upgrade_headers(None, version="12", key=None, origin="http://evil.test"),
        426,
        "unsupported_version",
    )
    evil = "http://evil.test"
    assert_rejected(server, "/ws?last_seq=x", upgrade_headers(None, key=None, origin=evil), 400, "bad_handshake")
    assert_rejected(server, "/ws?last_seq=x", upgrade_headers(None, origin=evil), 403, "origin_not_allowed")
    assert_rejected(server, "/ws?last_seq=x", upgrade_headers(server.token("u", ttl=-5)), 401, "token_expired")


def test_connection_limit_and_the_slot_comes_back(server: ServerHandle) -> None:
    tabs = [connect(server, "hs-limit") for _ in range(2)]
    try:
        for tab in tabs:
            welcome(tab)
        assert_rejected(server, "/ws", upgrade_headers(server.token("hs-limit")), 429, "connection_limit")
        tabs.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the close asynchronously
            status, _, _ = http_request(server, "/ws", upgrade_headers(server.token("hs-limit"), key=None))
            try:
                tabs.append(connect(server, "hs-limit"))
                break
            except websocket.WebSocketBadStatusException:
                assert time.monotonic() < deadline, "slot never came back"
                time.sleep(0.05)
        welcome(tabs[-1])
    finally:
        for tab in tabs:
            tab.close()


def test_rejected_handshakes_leave_nothing_behind(server: ServerHandle) -> None:
    for _ in range(5):
        assert_rejected(server, "/ws?last_seq=-3", upgrade_headers(server.token("hs-ghost")), 400, "invalid_field")
    tabs = [connect(server, "hs-ghost") for _ in range(2)]  # both slots are still free
    for tab in tabs:
        assert recv_json(tab)["type"] == "welcome"
        tab.close()


def test_other_paths_are_json_404(server: ServerHandle) -> None:
    for path in ("/", "/nope", "/ws/extra"):
        assert_rejected(server, path, {}, 404, "not_found")


# -- operations endpoints -----------------------------------------------------------------


def test_healthz(server: ServerHandle) -> None:
    status, headers, body = http_request(server, "/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert headers.get_content_type() == "application/json"


def test_stats_needs_an_admin_token(server: ServerHandle) -> None:
    assert server.get("/stats")[0] == 401
    status, body = server.get("/stats", "junk")
    assert (status, body["error"]) == (401, "invalid_token")
    status, body = server.get("/stats", server.token("u", ttl=-5, role="admin"))
    assert (status, body["error"]) == (401, "token_expired")
    status, body = server.get("/stats", server.token("u"))
    assert (status, body["error"]) == (403, "forbidden")
    status, body = server.get("/stats", server.token("u", role="user"))
    assert status == 403 and set(body) == {"error", "message"}
    status, body = server.get("/stats", server.admin_token())
    assert status == 200 and body["faults"] == {} and body["uptime_s"] >= 0


# -- closing -------------------------------------------------------------------------------


def test_client_close_handshake_ends_tcp_at_once(server: ServerHandle) -> None:
    with raw_client(server, server.token("close-client")) as client:
        client.sock.settimeout(5)
        assert json.loads(client.read_frame()[1])["type"] == "welcome"
        client.send_close(1000)
        started = time.monotonic()
        _, code = client.frames_until_close(timeout=5)
        assert code == 1000
        assert client.eof_within(1.0), "server kept TCP open after the close handshake"
        assert time.monotonic() - started < 1.0


def test_server_close_on_token_expiry_ends_tcp(server: ServerHandle) -> None:
    with raw_client(server, server.token("close-expiry", ttl=1.0)) as client:
        started = time.monotonic()
        frames, code = client.frames_until_close(timeout=4)
        assert code == 4001
        assert json.loads(frames[0][1])["type"] == "welcome"
        assert time.monotonic() - started < 3
        client.send_close(4001)
        assert client.eof_within(1.0), "server kept TCP open after its own close handshake"
    server.wait_stats(connections=0)


def test_refresh_postpones_token_expiry(server: ServerHandle) -> None:
    ws = connect(server, "close-refresh", header=[f"Authorization: Bearer {server.token('close-refresh', ttl=1.0)}"])
    try:
        welcome(ws)
        ws.send(json.dumps({"type": "refresh", "id": "r", "token": server.token("close-refresh", ttl=60)}))
        assert recv_json(ws)["type"] == "refreshed"
        ws.settimeout(0.3)
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:  # past the first token's exp: still open (pings answered)
            ws.send(json.dumps({"type": "ping", "id": 1}))
            assert recv_json(ws)["type"] == "pong"
            time.sleep(0.1)
    finally:
        ws.close()


def test_oversize_message_closes_with_1009(server: ServerHandle) -> None:
    ws = connect(server, "close-big")
    try:
        welcome(ws)
        ws.send(json.dumps({"type": "echo", "id": 1, "data": "x" * 900}))
        assert recv_json(ws)["type"] == "echo"  # under the limit: fine
        ws.send(json.dumps({"type": "echo", "id": 2, "data": "x" * 2000}))
        assert close_code(ws)[0] == 1009
    finally:
        ws.close()


def test_abrupt_disconnect_is_forgotten(server: ServerHandle) -> None:
    server.wait_stats(connections=0, users=0, registry_entries=0)
    sockets = [connect(server, f"abrupt-{n}") for n in range(3)]
    for ws in sockets:
        welcome(ws)
    server.wait_stats(connections=3, users=3, registry_entries=6)
    for ws in sockets:
        ws.sock.shutdown(socket.SHUT_RDWR)  # no close frame
        ws.sock.close()
    after = server.wait_stats(timeout=INTERVAL + TIMEOUT + 2, connections=0, users=0, registry_entries=0)
    assert after["connections"] == 0 and after["registry_entries"] == 0


def test_half_open_client_is_closed_with_1008(server: ServerHandle) -> None:
    before = server.stats()["heartbeat_timeouts"]
    with raw_client(server, server.token("half-open")) as client:
        started = time.monotonic()
        # Read nothing, answer nothing; then look at what arrived.
        server.wait_stats(timeout=INTERVAL + TIMEOUT + 2, heartbeat_timeouts=before + 1)
        assert time.monotonic() - started < INTERVAL + TIMEOUT + 1.0
        frames, code = client.frames_until_close(timeout=2)
        assert code == 1008
        assert OP_PING in [opcode for opcode, _ in frames]
    server.wait_stats(connections=0)


def test_server_pings_at_the_configured_interval(server: ServerHandle) -> None:
    before = server.stats()["heartbeat_timeouts"]  # the server is shared by this module's tests
    with raw_client(server, server.token("pinged")) as client:
        client.sock.settimeout(3)
        arrivals = []
        start = time.monotonic()
        while len(arrivals) < 3:
            opcode, payload = client.read_frame()
            if opcode == OP_PING:
                arrivals.append(time.monotonic() - start)
                client.send_frame(OP_PONG, payload)
        answered = server.stats()["heartbeat_timeouts"]  # before the close: every ping so far was answered
        gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
        assert arrivals[0] <= INTERVAL + 0.5
        assert all(INTERVAL * 0.7 <= gap <= INTERVAL + 0.5 for gap in gaps), gaps
        client.send_close()
        assert client.frames_until_close(timeout=2)[1] is not None
    assert answered == before, "a connection that answered every ping was counted as a heartbeat timeout"


def test_a_client_that_answers_pings_stays_open(server: ServerHandle) -> None:
    ws = connect(server, "keepalive")
    try:
        welcome(ws)
        ws.settimeout(0.2)
        deadline = time.monotonic() + 2 * (INTERVAL + TIMEOUT)
        while time.monotonic() < deadline:  # recv answers ping frames (RFC 6455)
            try:
                ws.recv()
            except websocket.WebSocketTimeoutException:
                pass
        ws.settimeout(5)
        ws.send(json.dumps({"type": "ping", "id": 1}))
        assert recv_json(ws)["type"] == "pong"
    finally:
        ws.close()


# -- servers of their own --------------------------------------------------------------------


def test_sigterm_closes_connections_with_1001_and_exits_0() -> None:
    with running_server() as handle:
        tabs = [connect(handle, "bye", origin=None) for _ in range(2)]
        try:
            for tab in tabs:
                welcome(tab)
            assert handle.process is not None
            handle.process.send_signal(signal.SIGTERM)
            for tab in tabs:
                assert close_code(tab) == (1001, "server shutting down")
            assert handle.process.wait(5) == 0
        finally:
            for tab in tabs:
                tab.close()


def test_skip_heartbeat_fault_sends_no_pings() -> None:
    with running_server(heartbeat_interval=0.2, heartbeat_timeout=0.2, faults="skip_heartbeat") as handle:
        with raw_client(handle, handle.token("quiet")) as client:
            client.sock.settimeout(1.0)
            opcodes = []
            with contextlib.suppress(TimeoutError, socket.timeout):
                while True:
                    opcodes.append(client.read_frame()[0])
            assert opcodes == [OP_TEXT, OP_TEXT]  # welcome and snapshot, no ping
        handle.wait_stats(connections=0)
        assert handle.stats()["heartbeat_timeouts"] == 0
