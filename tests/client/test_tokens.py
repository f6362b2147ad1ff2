"""Token minting round-trips through PyJWT exactly as the server decodes it."""

from __future__ import annotations

import time

import jwt
import pytest

from client.tokens import DEFAULT_SECRET, default_secret, mint_admin_token, mint_token


def test_round_trip_has_sub_iat_and_exp_after_ttl() -> None:
    before = time.time()
    token = mint_token("s3cret", "alice", ttl=60, plan="pro")
    claims = jwt.decode(token, "s3cret", algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["plan"] == "pro"
    assert before + 59 <= claims["exp"] <= time.time() + 61
    assert claims["iat"] <= time.time()


def test_wrong_secret_does_not_verify() -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(mint_token("a", "alice"), "b", algorithms=["HS256"])


def test_negative_ttl_is_already_expired() -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(mint_token("s", "alice", ttl=-10), "s", algorithms=["HS256"])


def test_audience_and_algorithm() -> None:
    token = mint_token("s", "alice", audience="chat", algorithm="HS512")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert jwt.decode(token, "s", algorithms=["HS512"], audience="chat")["aud"] == "chat"


def test_none_claims_are_left_out_for_bad_token_tests() -> None:
    token = mint_token("s", None, exp=None)
    assert jwt.decode(token, "s", algorithms=["HS256"]) == {"iat": pytest.approx(time.time(), abs=5)}


def test_alg_none_is_unsigned() -> None:
    token = mint_token("s", "alice", algorithm="none")
    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert token.endswith(".")


def test_admin_token_has_role_admin() -> None:
    claims = jwt.decode(mint_admin_token("s"), "s", algorithms=["HS256"])
    assert claims["role"] == "admin"
    assert claims["sub"]


def test_default_secret_comes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKETPROOF_JWT_SECRET", raising=False)
    assert default_secret() == DEFAULT_SECRET == "socketproof-development-secret-change-me"
    jwt.decode(mint_token(None, "alice"), DEFAULT_SECRET, algorithms=["HS256"])
    monkeypatch.setenv("SOCKETPROOF_JWT_SECRET", "from-env")
    jwt.decode(mint_token(None, "alice"), "from-env", algorithms=["HS256"])


def test_control_characters_are_found_and_shown_escaped() -> None:
    """Issue 24, finding 9: what may not go into a token or a header value."""
    from client.tokens import control_character

    assert control_character("eyJ.abc-_~+/=") is None and control_character("") is None
    assert control_character("tok\r\nX-Injected: yes") == "'\\r'"
    assert control_character("tok\x00") == "'\\x00'" and control_character("tok\x7f") == "'\\x7f'"
    assert control_character("a\tb") == "'\\t'" and control_character("a\tb", allow_tab=True) is None
    assert control_character("a\tb\n", allow_tab=True) == "'\\n'"
    assert control_character("café ünï") is None  # not a control character: not this check's business
