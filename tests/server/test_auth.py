"""The JWT matrix: which tokens open a connection and which protocol code refuses the rest."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from server.auth import AuthError, Claims, verify_token
from server.config import Settings
from server.faults import Faults

SECRET = "test-secret-that-is-long-enough-for-hs512-keys-0123456789abcdef-0123"
NOW = 1_700_000_000.0
SETTINGS = Settings(jwt_secret=SECRET)


def token(claims: dict[str, Any] | None = None, key: str = SECRET, algorithm: str = "HS256", **extra: Any) -> str:
    payload = {"sub": "alice", "exp": NOW + 60} if claims is None else claims
    return jwt.encode({**payload, **extra}, key, algorithm=algorithm)


def unsigned(payload: dict[str, Any]) -> str:
    """A token with `alg: none` and no signature, as an attacker would craft it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def refused(tok: str | None, settings: Settings = SETTINGS) -> str:
    with pytest.raises(AuthError) as caught:
        verify_token(tok, settings, NOW)
    assert caught.value.message
    return caught.value.code


def test_valid_token_gives_claims() -> None:
    claims = verify_token(token(role="admin"), SETTINGS, NOW)
    assert claims == Claims(user="alice", exp=NOW + 60, role="admin")


def test_valid_token_without_role_and_with_non_string_role() -> None:
    assert verify_token(token(), SETTINGS, NOW).role is None
    assert verify_token(token(role=1), SETTINGS, NOW).role is None


@pytest.mark.parametrize("tok", [None, ""])
def test_missing_token(tok: str | None) -> None:
    assert refused(tok) == "missing_token"


def test_wrong_key() -> None:
    assert refused(token(key="another-secret-of-sufficient-length-0123456789")) == "invalid_token"


def test_alg_none_is_refused() -> None:
    assert refused(unsigned({"sub": "alice", "exp": NOW + 60})) == "invalid_token"


def test_other_hmac_algorithm_is_refused() -> None:
    assert refused(token(algorithm="HS512")) == "invalid_token"
    hs512 = Settings(jwt_secret=SECRET, jwt_algorithm="HS512")
    assert verify_token(token(algorithm="HS512"), hs512, NOW).user == "alice"
    assert refused(token(), hs512) == "invalid_token"


def test_expired() -> None:
    assert refused(token({"sub": "alice", "exp": NOW - 1})) == "token_expired"
    assert refused(token({"sub": "alice", "exp": NOW})) == "token_expired"


def test_audience_is_checked_only_when_configured() -> None:
    with_aud = Settings(jwt_secret=SECRET, jwt_audience="chat")
    assert refused(token(aud="billing"), with_aud) == "invalid_token"
    assert refused(token(), with_aud) == "invalid_token"
    assert verify_token(token(aud="chat"), with_aud, NOW).user == "alice"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": NOW + 60},
        {"sub": "alice"},
        {"sub": 42, "exp": NOW + 60},
        {"sub": "", "exp": NOW + 60},
        {"sub": "alice", "exp": "tomorrow"},
    ],
    ids=["missing-sub", "missing-exp", "non-string-sub", "empty-sub", "non-numeric-exp"],
)
def test_bad_claims(claims: dict[str, Any]) -> None:
    assert refused(token(claims)) == "invalid_token"


@pytest.mark.parametrize("tok", ["garbage", "a.b.c", "Bearer x", "eyJhbGciOiJIUzI1NiJ9..", "\u00e9t\u00e9"])
def test_garbage(tok: str) -> None:
    assert refused(tok) == "invalid_token"


def test_fault_accept_any_signature() -> None:
    faulty = Settings(jwt_secret=SECRET, faults=Faults(accept_any_signature=True))
    forged = token(key="another-secret-of-sufficient-length-0123456789")
    assert verify_token(forged, faulty, NOW).user == "alice"
    assert verify_token(unsigned({"sub": "mallory", "exp": NOW + 60}), faulty, NOW).user == "mallory"
    # Still refused: the claims rules are not part of this fault.
    assert refused(token({"sub": "alice", "exp": NOW - 1}), faulty) == "token_expired"
    assert refused(unsigned({"exp": NOW + 60}), faulty) == "invalid_token"
    faulty_aud = Settings(jwt_secret=SECRET, jwt_audience="chat", faults=Faults(accept_any_signature=True))
    assert refused(token(aud="billing", key="x" * 40), faulty_aud) == "invalid_token"


def test_fault_accept_expired_tokens() -> None:
    faulty = Settings(jwt_secret=SECRET, faults=Faults(accept_expired_tokens=True))
    expired = token({"sub": "alice", "exp": NOW - 3600})
    assert verify_token(expired, faulty, NOW).user == "alice"
    assert refused(expired) == "token_expired"
    assert refused(token(key="another-secret-of-sufficient-length-0123456789"), faulty) == "invalid_token"
