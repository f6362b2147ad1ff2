"""Whole `locust --headless` runs against a deployed-like service: the reference server behind TLS
with a private CA and client certificates, expecting headers, cookies, an origin and query
parameters, and tokens from an identity provider's private key. Everything is asserted where the
service sees it (the TLS front records each request; tokens are verified with the public key)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.socketproof.deployed import SECRET, tls_target, upstream
from tests.socketproof.support import run_locust
from tests.support.json_endpoint import JsonEndpoint
from tests.support.server import running_server
from tests.support.tls_certs import signing_keys
from tests.support.tls_front import TlsFront

LOAD = ["-u", "4", "-r", "4", "-t", "6s", "--send-interval", "0.3", "--identities", "4"]
ORIGIN = "https://app.example.test"
API_KEY = "k-3f9a1c77e2b54d0e9"
COOKIE_VALUE = "sess-77d1e0c4a9b2"
TRACE = "trace-from-the-environment"


def no_secret_anywhere(run: object, report_dir: Path, secrets: list[str]) -> None:
    texts = [getattr(run, "stdout", ""), getattr(run, "stderr", "")]
    texts += [path.read_text(errors="replace") for path in report_dir.rglob("*") if path.is_file()]
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"a secret ({secret[:4]}...) reached the output or a report"


def test_wss_with_a_private_ca_client_certificates_and_handshake_extras(tmp_path: Path) -> None:
    with tls_target(tmp_path, client_ca=True, allowed_origins=ORIGIN) as (_server, front, authority):
        client = authority.issue("client", hosts=(), client=True)
        run = run_locust(
            [*LOAD, "--host", front.url("wss"), "--jwt-secret", SECRET, "--ca-file", str(authority.path),
             "--client-cert", str(client.cert), "--client-key", str(client.key),
             "--header", f"X-API-Key: {API_KEY}", "--header", f"Cookie: session={COOKIE_VALUE}; theme=dark",
             "--origin", ORIGIN, "--query", "tenant=acme", "--query", "region=eu west"],
            tmp_path / "reports",
            env={"SOCKETPROOF_HEADER_X_TRACE_ID": TRACE},
        )
        heads = front.websocket_heads()
        stats_reads = [head for head in front.heads if head.path == "/stats"]
    assert run.returncode == 0, run.describe()
    assert run.verdicts["cleanup"]["valid"] is True, run.verdicts["cleanup"]
    assert len(heads) >= 5, f"only {len(heads)} WebSocket upgrades arrived"  # the pre-flight and 4 users
    for head in heads:
        assert head.headers["x-api-key"] == API_KEY
        assert head.headers["cookie"] == f"session={COOKIE_VALUE}; theme=dark"
        assert head.headers["origin"] == ORIGIN
        assert head.headers["x-trace-id"] == TRACE
        assert head.query["tenant"] == ["acme"] and head.query["region"] == ["eu west"]
        assert head.client_cert, "a connection came without the client certificate"
    assert len(stats_reads) >= 2, "the cleanup check's /stats reads did not go through the TLS front"
    no_secret_anywhere(run, tmp_path / "reports", [API_KEY, COOKIE_VALUE])


@pytest.mark.parametrize("missing", ["ca", "client-cert"])
def test_a_certificate_problem_ends_the_run_before_it_starts(tmp_path: Path, missing: str) -> None:
    with tls_target(tmp_path, client_ca=True) as (_server, front, authority):
        client = authority.issue("client", hosts=(), client=True)
        args = ["--host", front.url("wss"), "--jwt-secret", SECRET, "-u", "1", "-t", "5s"]
        if missing == "client-cert":
            args += ["--ca-file", str(authority.path)]
        else:
            args += ["--client-cert", str(client.cert), "--client-key", str(client.key)]
        run = run_locust(args, tmp_path / "reports")
    assert run.returncode == 2, run.describe()
    lines = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert len(lines) == 1, run.describe()
    expected = "--ca-file" if missing == "ca" else "--client-cert and --client-key"
    assert expected in lines[0] and "Traceback" not in run.stderr, lines[0]


def test_insecure_warns_in_the_run_and_in_the_report(tmp_path: Path) -> None:
    with tls_target(tmp_path) as (_server, front, _authority):
        run = run_locust([*LOAD, "--host", front.url("wss"), "--jwt-secret", SECRET, "--insecure"],
                         tmp_path / "reports")
    assert run.returncode == 0, run.describe()
    assert "NOT verified" in run.stderr
    assert any("NOT verified" in warning for warning in run.checks["warnings"])  # checks.json meta


@pytest.mark.parametrize(("algorithm", "kind"), [("RS256", "rsa"), ("ES256", "ec256")])
def test_tokens_minted_from_a_private_key_are_verified_with_the_public_key(
    tmp_path: Path, algorithm: str, kind: str
) -> None:
    private, public = signing_keys(tmp_path, kind)
    with running_server(jwt_algorithm=algorithm, jwt_public_key=str(public)) as server:
        with TlsFront(upstream(server)) as front:  # plain TCP: records what the server is sent
            run = run_locust(
                [*LOAD, "--host", front.url("ws"), "--jwt-algorithm", algorithm, "--jwt-private-key", str(private),
                 "--jwt-claim", "tenant=acme", "--jwt-claim", 'scopes=["chat", "read"]',
                 "--jwt-claim", "iss=https://idp.example.test", "--jwt-subject", "{identity}",
                 "--token-query", "access_token"],
                tmp_path / "reports",
            )
            heads = front.websocket_heads()
    assert run.returncode == 0, run.describe()
    assert run.verdicts["cleanup"]["valid"] is True, run.verdicts["cleanup"]  # the admin token is signed too
    key = public.read_text()
    for head in heads:
        token = head.headers["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, key, algorithms=[algorithm], issuer="https://idp.example.test")
        assert claims["tenant"] == "acme" and claims["scopes"] == ["chat", "read"]
        assert head.query["access_token"] == [token]  # --token-query: the same token, in the URL too
    assert private.read_text().splitlines()[1] not in run.stdout + run.stderr


def test_a_tokens_file_is_used_round_robin(tmp_path: Path) -> None:
    with running_server(jwt_secret=SECRET) as server:
        tokens = [server.token(name) for name in ("alice", "bob", "carol")]
        path = tmp_path / "tokens.jsonl"
        path.write_text("".join(json.dumps({"identity": name, "token": token}) + "\n"
                                for name, token in zip(("alice", "bob", "carol"), tokens, strict=True)))
        with TlsFront(upstream(server)) as front:
            run = run_locust([*LOAD, "--host", front.url("ws"), "--tokens-file", str(path),
                              "--jwt-secret", SECRET], tmp_path / "reports")
            heads = front.websocket_heads()
    assert run.returncode == 0, run.describe()
    used = {head.headers["authorization"].removeprefix("Bearer ") for head in heads}
    assert used == set(tokens), "not every token of the file was used, or another token was"
    no_secret_anywhere(run, tmp_path / "reports", tokens)


def test_an_expired_token_in_the_file_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    with running_server(jwt_secret=SECRET) as server:
        path = tmp_path / "tokens.txt"
        path.write_text(server.token("alice") + "\n" + server.token("bob", ttl=-30) + "\n")
        run = run_locust(["--host", server.ws_url.rsplit("/", 1)[0], "--tokens-file", str(path), "-u", "1",
                          "-t", "5s"], tmp_path / "reports")
    assert run.returncode == 2, run.describe()
    assert "locust: error: --tokens-file line 2: the token expired" in run.stderr, run.describe()


class LoginServer(JsonEndpoint):
    """An identity provider's login endpoint: POST {"username", "password"} -> {"data": {"access_token"}}."""

    PASSWORD = "pw-4c1d9e8b7a"

    def __init__(self, secret: str) -> None:
        self.issued: dict[str, list[str]] = {}

        def answer(path: str, body: Any) -> tuple[int, Any]:
            if path != "/login" or body.get("password") != LoginServer.PASSWORD:
                return 401, None
            token = jwt.encode({"sub": body["username"], "exp": time.time() + 3600}, secret, algorithm="HS256")
            self.issued.setdefault(body["username"], []).append(token)
            return 200, {"data": {"access_token": token}}

        super().__init__(answer)


def test_tokens_from_a_login_endpoint(tmp_path: Path) -> None:
    body = json.dumps({"username": "{identity}", "password": LoginServer.PASSWORD})
    with running_server(jwt_secret=SECRET) as server, LoginServer(SECRET) as login:
        with TlsFront(upstream(server)) as front:
            run = run_locust([*LOAD, "--host", front.url("ws"), "--token-url", login.url,
                              "--token-field", "data.access_token", "--jwt-secret", SECRET],
                             tmp_path / "reports", env={"SOCKETPROOF_TOKEN_BODY": body})
            heads = front.websocket_heads()
    assert run.returncode == 0, run.describe()
    issued = {token for tokens in login.issued.values() for token in tokens}
    assert "socketproof-preflight" in login.issued and len(login.issued) >= 3, sorted(login.issued)
    assert all(len(tokens) == 1 for tokens in login.issued.values()), "a token was fetched again while still valid"
    used = {head.headers["authorization"].removeprefix("Bearer ") for head in heads}
    assert used and used <= issued, "a connection used a token the login endpoint did not issue"
    no_secret_anywhere(run, tmp_path / "reports", [LoginServer.PASSWORD, *issued])


def test_a_login_endpoint_that_refuses_ends_the_run_before_it_starts(tmp_path: Path) -> None:
    with running_server(jwt_secret=SECRET) as server, LoginServer(SECRET) as login:
        run = run_locust(["--host", server.ws_url.rsplit("/", 1)[0], "--token-url", login.url, "-u", "1", "-t", "5s",
                          "--token-body", '{"username": "{identity}", "password": "wrong-password"}'],
                         tmp_path / "reports")
    assert run.returncode == 2, run.describe()
    assert "answered HTTP 401" in run.stderr and "--token-body" in run.stderr, run.describe()
    assert "wrong-password" not in run.stdout + run.stderr
