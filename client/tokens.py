"""Mint JWTs the way the protocol expects (section 1), for tests and Locust users."""

from __future__ import annotations

import os
import time
from typing import Any

import jwt

DEFAULT_SECRET = "socketproof-development-secret-change-me"
"""The reference server's documented default `jwt_secret`."""


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

    `secret=None` uses `default_secret()`. Extra claims override the defaults, and a
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
    return jwt.encode(payload, secret if secret is not None else default_secret(), algorithm=algorithm)


def mint_admin_token(secret: str | None = None, sub: str = "admin", **kwargs: Any) -> str:
    """A token with `role: admin`, which `GET /stats` requires."""
    return mint_token(secret, sub, role="admin", **kwargs)
