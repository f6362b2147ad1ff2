"""Token checks: one place decides whether a JWT opens (or keeps) a connection."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jwt

from server.config import Settings


class AuthError(Exception):
    """A token was refused; `code` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Claims:
    user: str
    exp: float
    role: str | None = None


def verify_token(token: str | None, settings: Settings, now: float) -> Claims:
    """Return the token's claims or raise AuthError with the protocol code."""
    if not token:
        raise AuthError("missing_token", "no token: send 'Authorization: Bearer <jwt>' or ?token=")
    faults = settings.faults
    options: dict[str, Any] = {"require": ["exp", "sub"], "verify_exp": False}
    if faults.accept_any_signature:
        options["verify_signature"] = False
        options["verify_aud"] = bool(settings.jwt_audience)
    try:
        payload = jwt.decode(
            token,
            settings.jwt_public_key or settings.jwt_secret,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            options=options,
        )
    except jwt.MissingRequiredClaimError as error:
        raise AuthError("invalid_token", f"token has no {error.claim!r} claim") from None
    except jwt.InvalidAudienceError:
        raise AuthError("invalid_token", "token audience is not accepted here") from None
    except jwt.InvalidSignatureError:
        raise AuthError("invalid_token", "token signature does not verify") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError(
            "invalid_token", f"token algorithm is not accepted (only {settings.jwt_algorithm})"
        ) from None
    except jwt.InvalidTokenError as error:
        raise AuthError("invalid_token", f"token is not valid: {error}") from None
    user, exp = payload.get("sub"), payload.get("exp")
    if not isinstance(user, str) or not user:
        raise AuthError("invalid_token", "token 'sub' must be a non-empty string")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise AuthError("invalid_token", "token 'exp' must be a number")
    try:
        finite = math.isfinite(exp)  # 1e999 reads as Infinity: a token that never expires
    except OverflowError:  # an integer too big for a float
        finite = False
    if not finite:
        raise AuthError("invalid_token", "token 'exp' must be a finite number")
    if exp <= now and not faults.accept_expired_tokens:
        raise AuthError("token_expired", "token has expired")
    role = payload.get("role")
    return Claims(user=user, exp=float(exp), role=role if isinstance(role, str) else None)
