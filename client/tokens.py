"""Mint JWTs the way the protocol expects (section 1), for tests and Locust users; and find the
control characters no token or header value may carry (`control_character`)."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import jwt

from common.defaults import DEFAULT_SECRET

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def default_secret() -> str:
    """`SOCKETPROOF_JWT_SECRET` when set, so tests and the server agree without plumbing."""
    return os.environ.get("SOCKETPROOF_JWT_SECRET") or DEFAULT_SECRET


def mint_token(
    secret: str | None,
    sub: str | None,
    *,
    ttl: float = 3600.0,
    algorithm: str = "HS256",
    audience: str | None = None,
    **claims: Any,
) -> str:
    """Sign `{sub, iat, exp=now+ttl, aud?, **claims}`.

    `secret=None` (or empty) uses `default_secret()`. Extra claims override the defaults, and a
    claim given as None is left out, so bad tokens are one call away:
    `mint_token(s, "u", exp=None)` has no `exp`, `ttl=-10` is already expired,
    `algorithm="none"` is unsigned.
    """
    now = time.time()
    payload: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": round(now + ttl, 3)}
    if audience is not None:
        payload["aud"] = audience
    payload.update(claims)
    payload = {key: value for key, value in payload.items() if value is not None}
    if algorithm.lower() == "none":
        return jwt.encode(payload, None, algorithm="none")
    return jwt.encode(payload, secret or default_secret(), algorithm=algorithm)


def mint_admin_token(secret: str | None = None, sub: str = "admin", **kwargs: Any) -> str:
    """A token with `role: admin`, which `GET /stats` requires."""
    return mint_token(secret, sub, role="admin", **kwargs)


def control_character(value: str, *, allow_tab: bool = False) -> str | None:
    """The first control character in `value`, shown escaped (`'\\r'`), or None.

    A token or header value goes into the upgrade request as text: a CR or LF there ends
    the header and starts one the sender never meant (websocket-client does not check),
    so such a value is refused before anything is sent. A tab is legal inside an HTTP
    header value (RFC 9110 field-value), never inside a token.
    """
    found = (_CONTROL_BUT_TAB if allow_tab else _CONTROL).search(value)
    return None if found is None else repr(found.group())
