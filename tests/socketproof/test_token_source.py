"""The token sources' pure parts: claims, subjects, algorithms, a tokens file's lines and expiry."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from socketproof import token_source
from socketproof.token_source import FileTokens, TokenSourceError, parse_claim, read_tokens_file
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
