"""Core test 3: who may connect, token refresh on a live connection, expiry closes with 4001."""

from __future__ import annotations

import time

import jwt
import pytest

from client import HandshakeRejected, ProtocolClient, ProtocolError, State, mint_token
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import CLIENT_TIMEOUT, Baseline, Clients, new_user

# an HS512 token signed with the server's (shorter) HS256 secret is the point of one case
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SHORT_TTL = 1.0  # seconds a "short" token lives: long enough to connect, short enough to wait for
AUDIENCE = "socketproof-core-tests"
WRONG_SECRET = "not-the-secret-of-this-server-but-long-enough"


def bad_tokens(server: ServerHandle, user: str) -> dict[str, str | None]:
    return {
        "bad-signature": mint_token(WRONG_SECRET, user),
        "alg-none": mint_token(None, user, algorithm="none"),
        "wrong-algorithm": mint_token(server.secret, user, algorithm="HS512"),
        "garbage": "not.a.jwt",
        "no-sub": mint_token(server.secret, None),
        "empty-sub": mint_token(server.secret, ""),
        "no-exp": mint_token(server.secret, user, exp=None),
        "expired": mint_token(server.secret, user, ttl=-30),
        "missing": None,
    }


EXPECTED = {
    "bad-signature": "invalid_token",
    "alg-none": "invalid_token",
    "wrong-algorithm": "invalid_token",
    "garbage": "invalid_token",
    "no-sub": "invalid_token",
    "empty-sub": "invalid_token",
    "no-exp": "invalid_token",
    "expired": "token_expired",
    "missing": "missing_token",
}


def test_valid_token_connects(server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics) -> None:
    user = new_user()
    exp = time.time() + 600
    token = mint_token(server.secret, user, exp=exp)
    for how in ("header", "query"):
        client = clients.make(user, token="" if how == "query" else token)
        if how == "query":
            client.token = None
        t0 = time.perf_counter()
        session = client.connect(query={"token": token} if how == "query" else None)
        metrics.rtt((time.perf_counter() - t0) * 1000.0)
        assert session.welcome["user"] == user
        assert abs(session.welcome["token_exp"] - exp) < 1.0
        assert client.ping()["type"] == "pong"
        client.close()
    baseline.assert_restored()


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_token_is_rejected(server: ServerHandle, clients: Clients, baseline: Baseline, kind: str) -> None:
    user = new_user()
    token = bad_tokens(server, user)[kind]
    client = clients.track(ProtocolClient(server.ws_url, token=token, timeout=CLIENT_TIMEOUT))
    with pytest.raises(HandshakeRejected) as caught:
        client.connect()
    assert (caught.value.status, caught.value.code) == (401, EXPECTED[kind])
    assert client.state is State.CLOSED and client.session is None
    stats = baseline.wait_delta("auth_failures", 1) if kind != "missing" else server.stats()
    assert stats["connections"] <= baseline.stats["connections"]
    baseline.assert_restored()


def test_audience_is_checked_when_configured(configured_server, metrics: TestMetrics) -> None:  # type: ignore[no-untyped-def]
    srv = configured_server(jwt_audience=AUDIENCE)
    base = Baseline(srv)
    user = new_user()
    assert "aud" in jwt.decode(srv.admin_token(), options={"verify_signature": False})  # /stats needs it too
    with ProtocolClient(
        srv.ws_url, token=mint_token(srv.secret, user, audience=AUDIENCE), timeout=CLIENT_TIMEOUT
    ) as ok:
        assert metrics.timed(ok.connect).welcome["user"] == user
    for token in (mint_token(srv.secret, user, audience="someone-else"), mint_token(srv.secret, user)):
        with ProtocolClient(srv.ws_url, token=token, timeout=CLIENT_TIMEOUT) as wrong:
            with pytest.raises(HandshakeRejected) as caught:
                wrong.connect()
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    base.wait_delta("auth_failures", 2)
    base.assert_restored()


def test_refresh_extends_a_live_connection(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user = new_user()
    client = clients.open(user, token=mint_token(server.secret, user, ttl=SHORT_TTL))
    new_exp = round(time.time() + 600, 3)
    reply = metrics.timed(client.refresh, mint_token(server.secret, user, exp=new_exp))
    assert reply["type"] == "refreshed" and abs(reply["exp"] - new_exp) < 1.0
    time.sleep(SHORT_TTL + 0.4)  # past the first token's exp: would be closed with 4001
    assert client.state is State.OPEN
    assert client.ping()["type"] == "pong"
    client.close()
    baseline.assert_restored()


def refused_refreshes(server: ServerHandle, user: str) -> dict[str, tuple[str, str]]:
    return {
        "other-user": (mint_token(server.secret, new_user()), "wrong_user"),
        "expired": (mint_token(server.secret, user, ttl=-30), "token_expired"),
        "bad-signature": (mint_token(WRONG_SECRET, user, ttl=600), "invalid_token"),
        "alg-none": (mint_token(None, user, algorithm="none", ttl=600), "invalid_token"),
    }


@pytest.mark.parametrize("kind", ["other-user", "expired", "bad-signature", "alg-none"])
def test_refused_refresh_keeps_the_connection(
    server: ServerHandle, clients: Clients, baseline: Baseline, kind: str
) -> None:
    user = new_user()
    client = clients.open(user)
    token, code = refused_refreshes(server, user)[kind]
    with pytest.raises(ProtocolError) as caught:
        client.refresh(token)
    assert caught.value.code == code and caught.value.frame["id"] is not None
    assert client.ping()["type"] == "pong"  # the connection survives the refusal
    baseline.wait_delta("auth_failures", 1)
    client.close()
    baseline.assert_restored()


def test_refused_refreshes_leave_the_old_expiry(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user()
    client = clients.open(user, token=mint_token(server.secret, user, ttl=SHORT_TTL))
    for token, code in refused_refreshes(server, user).values():
        with pytest.raises(ProtocolError) as caught:
            client.refresh(token)
        assert caught.value.code == code
    closed = client.wait_closed(SHORT_TTL + 1.5)  # still expires with its old token
    assert (closed.code, closed.reason) == (4001, "token expired")
    baseline.assert_restored()


def test_expiry_closes_with_4001(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user()
    exp = time.time() + SHORT_TTL
    client = clients.open(user, token=mint_token(server.secret, user, exp=exp))
    assert client.ping()["type"] == "pong"
    closed = client.wait_closed(SHORT_TTL + 1.5)
    assert (closed.code, closed.reason) == (4001, "token expired")
    assert time.time() >= exp - 0.05, "closed before the token expired"
    assert client.state is State.CLOSED
    baseline.assert_restored()
