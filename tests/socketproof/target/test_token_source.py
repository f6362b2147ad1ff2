"""The token sources' pure parts: claims, subjects, algorithms, a tokens file's lines and expiry."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import jwt
import pytest

from client.errors import SocketproofError
from socketproof.target import token_source
from socketproof.target.token_source import FileTokens, TokenSourceError, parse_claim, read_tokens_file
from tests.socketproof.deployed import parse
from tests.support.tls_certs import signing_keys

NOW = 1_900_000_000.0


def test_claims_read_json_values_and_fall_back_to_text() -> None:
    assert parse_claim("tenant=acme") == ("tenant", "acme")
    assert parse_claim('scopes=["a", "b"]') == ("scopes", ["a", "b"])
    assert parse_claim("level=3") == ("level", 3)
    assert parse_claim("url=https://x/y=z") == ("url", "https://x/y=z")


@pytest.mark.parametrize(("algorithm", "kind"), [("RS256", "rsa"), ("RS512", "rsa"), ("ES256", "ec256"),
                                                 ("ES384", "ec384"), ("EdDSA", "ed25519")])
def test_every_key_algorithm_mints_tokens_its_public_key_verifies(tmp_path: Path, algorithm: str, kind: str) -> None:
    private, public = signing_keys(tmp_path, kind)
    source = token_source.minted(parse("--jwt-algorithm", algorithm, "--jwt-private-key", str(private),
                                       "--jwt-claim", "role=user", "--jwt-subject", "lt-{identity}"), "", "aud-1")
    claims = jwt.decode(source.token("chat-3"), public.read_text(), algorithms=[algorithm], audience="aud-1")
    assert claims["sub"] == "lt-chat-3" and claims["role"] == "user"
    admin = jwt.decode(source.admin_token(), public.read_text(), algorithms=[algorithm], audience="aud-1")
    assert admin["role"] == "admin"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms_sign_with_the_secret(algorithm: str) -> None:
    source = token_source.minted(parse("--jwt-algorithm", algorithm.lower()), "s" * 64, None)
    assert jwt.decode(source.token("u"), "s" * 64, algorithms=[algorithm])["sub"] == "u"


def test_a_key_of_the_wrong_kind_is_named(tmp_path: Path) -> None:
    private, _ = signing_keys(tmp_path, "rsa")
    with pytest.raises(TokenSourceError, match="does not fit --jwt-algorithm ES256"):
        token_source.minted(parse("--jwt-algorithm", "ES256", "--jwt-private-key", str(private)), "", None)


def test_a_tokens_file_is_round_robin_and_stable_per_identity(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# comment\ntok-a\n\n{\"identity\": \"bob\", \"token\": \"tok-b\"}\n")
    tokens = read_tokens_file(str(path), NOW)
    assert [e.identity for e in tokens.entries] == [None, "bob"] and [e.line for e in tokens.entries] == [2, 4]
    given = [tokens.token(name) for name in ("x", "y", "z", "x", "y")]
    assert given == ["tok-a", "tok-b", "tok-a", "tok-a", "tok-b"]


def test_an_expired_token_is_an_error_and_one_expiring_during_the_run_a_warning(tmp_path: Path) -> None:
    soon = jwt.encode({"sub": "a", "exp": NOW + 30}, "k" * 32)
    gone = jwt.encode({"sub": "b", "exp": NOW - 5}, "k" * 32)
    path = tmp_path / "t.txt"
    path.write_text(f"{soon}\n")
    warnings = read_tokens_file(str(path), NOW).expiring(60.0, NOW)
    assert len(warnings) == 1 and "line 1" in warnings[0] and "30s into a 60s run" in warnings[0]
    assert read_tokens_file(str(path), NOW).expiring(20.0, NOW) == []
    path.write_text(f"{soon}\n{{\"identity\": \"bob\", \"token\": \"{gone}\"}}\n")
    with pytest.raises(TokenSourceError, match=r"line 2 \(bob\): the token expired 5s ago"):
        read_tokens_file(str(path), NOW)


@pytest.mark.parametrize(("text", "words"), [("", "no tokens"), ("{not json\n", "not JSON"),
                                             ('{"identity": "a"}\n', 'no "token"')])
def test_bad_tokens_files_are_named(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(TokenSourceError, match=words):
        read_tokens_file(str(path), NOW)


def test_a_fetched_token_is_kept_until_it_is_about_to_expire() -> None:
    clock = [NOW]
    fetched: list[str] = []

    class Counting(token_source.UrlTokens):
        def fetch(self, identity: str) -> str:
            fetched.append(identity)
            return jwt.encode({"sub": identity, "exp": clock[0] + 120}, "k" * 32)

    source = Counting("http://127.0.0.1:9/login", "{}", "access_token", clock=lambda: clock[0])
    first = source.token("a")
    assert source.token("a") == first and fetched == ["a"]
    clock[0] += 70  # 50 s left: under the refresh margin
    assert source.token("a") != first and fetched == ["a", "a"]


def test_file_tokens_know_their_option() -> None:
    assert FileTokens([token_source.TokenEntry("t", 1)]).option == "--tokens-file"


# -- hostile tokens (issue 24, findings 8 and 9) ------------------------------------------------

SIGNING = "k" * 32
INJECTED = "\r\nX-Injected: yes"


def one_line_naming(error: BaseException, *words: str) -> str:
    text = str(error)
    assert "\n" not in text and "\r" not in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("exp", [10**400, -(10**400), float("nan"), float("inf"), 1e300])
def test_a_tokens_file_token_whose_exp_is_no_time_is_refused_in_one_line(tmp_path: Path, exp: float) -> None:
    """Before: a 400-digit exp raised OverflowError (a traceback), NaN and inf passed as a time."""
    path = tmp_path / "t.txt"
    token = jwt.encode({"sub": "a", "exp": exp}, SIGNING)
    path.write_text(f"{jwt.encode({'sub': 'ok'}, SIGNING)}\n{token}\n")
    with pytest.raises(TokenSourceError) as caught:
        read_tokens_file(str(path), NOW)
    assert caught.value.code == "bad_exp"  # type: ignore[attr-defined]
    text = one_line_naming(caught.value, "--tokens-file line 2", "exp claim is no time")
    assert token not in text and len(text) < 200


@pytest.mark.parametrize("line", [
    json.dumps({"identity": "bob", "token": jwt.encode({"sub": "b"}, SIGNING) + INJECTED}),
    "opaque-token\x00more",
    "opaque-token\x1b[2J",
    "opaque\rX-Injected: yes",
    "opaque\x7f",
])
def test_a_tokens_file_token_with_a_control_character_is_refused_never_shown(tmp_path: Path, line: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(f"good-token\n{line}\n")
    with pytest.raises(TokenSourceError) as caught:
        read_tokens_file(str(path), NOW)
    assert caught.value.code == "unsafe_token"  # type: ignore[attr-defined]
    text = one_line_naming(caught.value, "--tokens-file line 2", "control character", "never sent")
    assert "opaque" not in text and "X-Injected" not in text


def test_a_tokens_file_json_line_nested_too_deeply_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text('{"token": ' + "[" * 20_000 + "]" * 20_000 + "}\n")
    with pytest.raises(TokenSourceError, match="line 1: not JSON"):
        read_tokens_file(str(path), NOW)


def test_an_identity_with_a_newline_is_quoted_so_the_error_stays_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    gone = jwt.encode({"sub": "b", "exp": NOW - 5}, SIGNING)
    path.write_text(json.dumps({"identity": "bob\nlocust: error: forged", "token": gone}) + "\n")
    with pytest.raises(TokenSourceError) as caught:
        read_tokens_file(str(path), NOW)
    one_line_naming(caught.value, "line 1 ('bob\\nlocust: error: forged')", "expired 5s ago")


class Issued(token_source.UrlTokens):
    """A login endpoint stand-in for the pure part: `fetch` hands out `issue(identity)`."""

    def __init__(self, issue: Any) -> None:
        super().__init__("http://127.0.0.1:9/login", "{}", "access_token", clock=lambda: NOW)
        self.issue = issue
        self.fetched: list[str] = []

    def fetch(self, identity: str) -> str:
        self.fetched.append(identity)
        return str(self.issue(identity))


def test_a_fetched_token_with_crlf_is_refused_as_a_failed_connect_and_not_kept() -> None:
    source = Issued(lambda identity: jwt.encode({"sub": identity}, SIGNING) + INJECTED)
    with pytest.raises(SocketproofError) as caught:  # what a user's task counts as a failed connect
        source.token("alice")
    assert isinstance(caught.value, TokenSourceError)  # and what the pre-flight turns into exit 2
    assert caught.value.code == "unsafe_token"  # type: ignore[attr-defined]
    one_line_naming(caught.value, "--token-url http://127.0.0.1:9/login for alice", "control character ('\\r')")
    assert "X-Injected" not in str(caught.value) and source._held == {}


@pytest.mark.parametrize("exp", [float("nan"), 10**400])
def test_a_fetched_token_whose_exp_is_no_time_is_refused_not_fetched_on_every_connect(exp: float) -> None:
    """Before: NaN never looked fresh, so every connect fetched again; 10**400 raised OverflowError."""
    source = Issued(lambda identity: jwt.encode({"sub": identity, "exp": exp}, SIGNING))
    with pytest.raises(TokenSourceError) as caught:
        source.token("alice")
    assert caught.value.code == "bad_exp"  # type: ignore[attr-defined]
    one_line_naming(caught.value, "--token-url", "for alice", "exp claim is no time")


def test_a_login_endpoint_answering_json_nested_too_deeply_is_named() -> None:
    body = ('{"access_token": ' + "[" * 20_000 + "]" * 20_000 + "}").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        source = token_source.UrlTokens(f"http://127.0.0.1:{server.server_address[1]}/login", "{}", "access_token")
        with pytest.raises(TokenSourceError, match="did not answer JSON"):
            source.token("alice")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
