"""The real reference server against a hostile client and a careless operator (issue 12,
findings 2, 4, 5 and 8): real processes, real sockets on loopback, websocket-client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websocket

from server.config import DEFAULT_SECRET
from server.process import ROOT
from server.serve import development_secret_problem, is_loopback
from tests.support.server import ServerHandle, running_server

SECRET = "security-test-secret-0123456789-abcdef"


def connect(server: ServerHandle, user: str, token: str | None = None) -> websocket.WebSocket:
    """Open a connection and read its welcome and snapshot."""
    ws = websocket.create_connection(
        server.ws_url, header=[f"Authorization: Bearer {token or server.token(user)}"], timeout=10
    )
    assert json.loads(ws.recv())["type"] == "welcome"
    assert json.loads(ws.recv())["type"] == "snapshot"
    return ws


def ask(ws: websocket.WebSocket, text: str) -> dict[str, Any]:
    ws.send(text)
    return json.loads(ws.recv())


def nothing_within(ws: websocket.WebSocket, seconds: float) -> bool:
    ws.settimeout(seconds)
    try:
        frame = ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    finally:
        ws.settimeout(10)
    raise AssertionError(f"got {frame!r}")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(jwt_secret=SECRET, max_message_bytes=8192) as handle:
        yield handle


# -- finding 2: the development secret ----------------------------------------------------------


def run_server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=15,
    )


def test_the_development_secret_is_refused_off_loopback_with_one_line_and_exit_2() -> None:
    result = run_server("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert "jwt_secret" in lines[0] and "SOCKETPROOF_JWT_SECRET" in lines[0] and "0.0.0.0" in lines[0]


def test_on_loopback_the_server_says_once_that_it_uses_the_development_secret() -> None:
    with running_server() as handle:
        notes = [line for line in handle.output if "development secret" in line]
        assert len(notes) == 1 and "jwt_secret" in notes[0]
    with running_server(jwt_secret=SECRET) as handle:
        assert not any("development secret" in line for line in handle.output)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.10", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    problem = development_secret_problem(DEFAULT_SECRET, host)
    assert problem is not None and problem[0] is not loopback
    assert development_secret_problem(SECRET, host) is None


# -- finding 8: the /stats 401 message -----------------------------------------------------------


def test_stats_without_a_token_names_the_header_it_reads_not_a_query(server: ServerHandle) -> None:
    status, body = server.get("/stats")
    assert status == 401 and body["error"] == "missing_token"
    assert "Authorization: Bearer" in body["message"] and "?token" not in body["message"]
    status, body = server.get("/stats?token=" + server.admin_token())
    assert status == 401  # truly not read: the message did not lie


# -- finding 4: NaN and Infinity -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["[NaN,Infinity]", "-Infinity", "1e999"])
def test_non_standard_numbers_are_refused_and_never_reach_the_recipient(server: ServerHandle, value: str) -> None:
    mallory, victim = connect(server, "mallory"), connect(server, "victim-live")
    try:
        reply = ask(mallory, f'{{"type":"send","id":1,"to":"victim-live","data":{value}}}')
        assert reply["type"] == "error" and reply["code"] == "bad_json", reply
        assert nothing_within(victim, 0.5)
        reply = ask(mallory, f'{{"type":"send","id":2,"to":"victim-off","data":{value}}}')
        assert reply["code"] == "bad_json"
    finally:
        mallory.close(), victim.close()
    later = websocket.create_connection(
        server.ws_url + "?last_seq=0", header=[f"Authorization: Bearer {server.token('victim-off')}"], timeout=10
    )
    try:
        welcome = json.loads(later.recv())
        assert welcome["replay"] == 0 and welcome["last_seq"] == 0
    finally:
        later.close()


def test_a_token_whose_exp_overflows_to_infinity_is_refused_at_the_handshake(server: ServerHandle) -> None:
    header = jwt.encode({"sub": "x", "exp": 1}, SECRET, algorithm="HS256").split(".")[0]
    payload = base64.urlsafe_b64encode(b'{"sub":"forever","exp":1e999}').rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(server.ws_url, header=[f"Authorization: Bearer {token}"], timeout=10)
    assert refused.value.status_code == 401
    assert b"invalid_token" in (refused.value.resp_body or b"")


# -- finding 5: bounded memory --------------------------------------------------------------------


def test_the_state_document_stops_at_max_message_bytes(server: ServerHandle) -> None:
    tab = connect(server, "grower")
    try:
        version = 0
        for n in range(2000):
            reply = ask(tab, json.dumps({"type": "update", "id": n, "base_version": version,
                                         "patch": {f"key{n:05d}": n}}))
            if reply["type"] == "error":
                break
            version = reply["version"]
        else:
            pytest.fail("2000 updates accepted: the state document has no bound")
        assert reply["code"] == "state_too_large" and reply["current_version"] == version
        tab.send(json.dumps({"type": "sync", "id": "s"}))
        raw = tab.recv()
        assert json.loads(raw)["version"] == version and len(raw.encode()) <= 8192
    finally:
        tab.close()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read the server's memory")
def test_a_hostile_sender_cannot_grow_server_memory_past_the_bounds() -> None:
    """2,000 sends of 20 kB to made-up recipients would hold ~40 MB (and 2,000 users) without the
    bounds; with max_retained_users=50 and max_retained_bytes=256 KiB the server holds those."""
    bound = 256 * 1024
    settings = {"jwt_secret": SECRET, "max_retained_users": 50, "max_retained_bytes": bound, "rate_limit": 0}
    with running_server(**settings) as handle:
        assert handle.process is not None
        mallory = connect(handle, "mallory")
        try:
            ask(mallory, '{"type":"ping","id":0}')
            before = rss_bytes(handle.process.pid)
            data = "y" * 20_000
            codes: dict[str, int] = {}
            for n in range(2000):
                mallory.send(f'{{"type":"send","id":{n},"to":"ghost{n}","data":"{data}"}}')
                reply = json.loads(mallory.recv())
                key = reply.get("code", reply["type"])
                codes[key] = codes.get(key, 0) + 1
            for n in range(500):  # small messages: now the number of recipients is the bound
                reply = ask(mallory, f'{{"type":"send","id":"s{n}","to":"small{n}","data":1}}')
                key = reply.get("code", reply["type"])
                codes[key] = codes.get(key, 0) + 1
            grown = rss_bytes(handle.process.pid) - before
        finally:
            mallory.close()
        stats = handle.stats()
    assert set(codes) == {"ack", "retention_full"}, codes
    assert stats["retained_users"] <= 50 and stats["retained_bytes"] <= bound, stats
    assert stats["rejected_retention_full"] == codes["retention_full"]
    assert grown < 16 * 1024 * 1024, f"server RSS grew by {grown / 1e6:.1f} MB"
