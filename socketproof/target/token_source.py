"""Where each identity's token comes from: minted here, read from a file, or fetched from a login endpoint.

One source per run, asked by the Locust users (`token(identity)`) and the pre-flight; where the
token then goes (Authorization header, Socket.IO CONNECT auth, graphql-ws connection_init, a
query parameter with --token-query) is the adapter's business, not this module's.

- `MintedTokens`: --jwt-algorithm HS256/384/512 with --jwt-secret, or RS256/384/512, ES256/384,
  EdDSA with --jwt-private-key; --jwt-claim adds claims, --jwt-subject shapes `sub`.
- `FileTokens`: --tokens-file, one token per line or JSON lines {"identity": ..., "token": ...},
  handed out round-robin by identity; an expired one stops the run before it starts.
- `UrlTokens`: --token-url, a POST of --token-body (with `{identity}`) per identity, the token
  read at --token-field; fetched again when the one held is about to expire.

A token read or fetched is never trusted as text (`checked`): one holding a control character
(a CR/LF would split the Authorization header) or an `exp` that is no time is refused with
TokenRefused before anything is sent.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import math
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import jwt

from client.errors import SocketproofError
from client.tokens import control_character, default_secret, mint_token

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA")
ALGORITHMS = HMAC_ALGORITHMS + KEY_ALGORITHMS
DEFAULT_TOKEN_FIELD = "access_token"
LOGIN_TIMEOUT = 10.0
MAX_ANSWER = 1024 * 1024
REFRESH_MARGIN = 60.0
"""A fetched token expiring sooner than this is fetched again."""
MAX_EXP = 253_402_300_799
"""9999-12-31T23:59:59Z: an `exp` past it (either way) is no time a clock will show."""


class TokenSourceError(ValueError):
    """No token can be had as the options say (one line naming the option); exit 2 before the run."""


class TokenRefused(TokenSourceError, SocketproofError):
    """A token that came unusable from the file or the login endpoint; it is never sent.

    `code` says why, first in str() as in client/errors.py: `unsafe_token` (a control
    character) or `bad_exp` (an `exp` that is no time). Being a SocketproofError, a refusal
    during the run is one failed connect of that user, not a task's traceback.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TokenSource(Protocol):
    option: str
    """The option a refused token points at (the pre-flight's hint)."""

    def token(self, identity: str, ttl: float = 3600.0) -> str: ...


def expiry(token: str) -> float | None:
    """A JWT's `exp` (not verified: only the server can), None for an opaque token or none.

    A numeric `exp` that is no time (NaN, infinite, a 400-digit integer: anything past year
    9999 either way) raises TokenRefused `bad_exp` rather than reading as "no expiry": it is
    the issuer's mistake, which the server may well refuse too, and a NaN kept would never
    look fresh, so every connect would fetch again. A non-numeric `exp` stays None, as before.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a payload nested too deeply
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if not -MAX_EXP <= exp <= MAX_EXP:  # False for NaN too; ints compare without overflow
        raise TokenRefused("bad_exp", f"the token's exp claim is no time ({_shown_number(exp)}); refused")
    return float(exp)


def checked(token: str, where: str) -> float | None:
    """`token`'s expiry once the token is known safe to send; TokenRefused naming `where` (never
    the token) for a control character, which would end the Authorization header and start
    another, or for a bad `exp`."""
    bad = control_character(token)
    if bad is not None:
        raise TokenRefused("unsafe_token", f"{where}: the token holds a control character ({bad}); "
                                           "refused, never sent (it would break the Authorization header)")
    try:
        return expiry(token)
    except TokenRefused as error:
        raise TokenRefused(error.code, f"{where}: {error.message}") from None


def _shown_number(value: float) -> str:
    """NaN and inf as Python writes them; a huge integer by its size (its str() may raise)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return repr(value)


# -- minted ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MintedTokens:
    key: Any
    algorithm: str = "HS256"
    audience: str | None = None
    claims: dict[str, Any] = dataclasses.field(default_factory=dict)
    subject: str = "{identity}"

    @property
    def option(self) -> str:
        if self.algorithm in HMAC_ALGORITHMS:
            return "--jwt-secret (or $SOCKETPROOF_JWT_SECRET)"
        return "--jwt-private-key and --jwt-algorithm"

    def token(self, identity: str, ttl: float = 3600.0) -> str:
        sub = self.subject.replace("{identity}", identity)
        return mint_token(self.key, sub, ttl=ttl, algorithm=self.algorithm, audience=self.audience, **self.claims)

    def admin_token(self) -> str:
        """For the reference server's /stats: `role: admin`, signed like the users' tokens."""
        claims = {**self.claims, "role": "admin"}
        return mint_token(self.key, "admin", ttl=600, algorithm=self.algorithm, audience=self.audience, **claims)


def parse_claim(raw: str) -> tuple[str, Any]:
    """'name=value': the value as JSON when it reads as JSON (numbers, lists, objects), else text."""
    name, sep, value = str(raw).partition("=")
    name = name.strip()
    if not sep or not name:
        raise TokenSourceError(f"--jwt-claim must be name=value (JSON values allowed), got {raw!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def minted(parsed: Any, secret: str, audience: str | None) -> MintedTokens:
    algorithm = str(getattr(parsed, "jwt_algorithm", "") or "HS256").strip()
    match = {a.lower(): a for a in ALGORITHMS}.get(algorithm.lower())
    if match is None:
        raise TokenSourceError(f"--jwt-algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    key_file = str(getattr(parsed, "jwt_private_key", "") or "")
    key: Any = secret or default_secret()  # empty: $SOCKETPROOF_JWT_SECRET, else the development secret
    if match in KEY_ALGORITHMS:
        if not key_file:
            raise TokenSourceError(f"--jwt-algorithm {match} signs with a private key: give it with --jwt-private-key "
                                   "FILE (PEM)")
        key = _private_key(key_file)
    elif key_file:
        raise TokenSourceError(f"--jwt-private-key is for RS/ES/EdDSA algorithms; --jwt-algorithm {match} signs "
                               "with --jwt-secret")
    claims = dict(parse_claim(raw) for raw in (getattr(parsed, "jwt_claim", None) or []))
    subject = str(getattr(parsed, "jwt_subject", "") or "{identity}")
    if "{identity}" not in subject:
        raise TokenSourceError(f"--jwt-subject must contain {{identity}} (each user needs its own), got {subject!r}")
    source = MintedTokens(key, match, audience, claims, subject)
    try:
        source.token("probe")
    except (TypeError, ValueError, jwt.PyJWTError) as error:  # e.g. an RSA key for ES256
        raise TokenSourceError(f"--jwt-private-key does not fit --jwt-algorithm {match}: {error}") from None
    return source


def _private_key(path: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TokenSourceError(f"--jwt-private-key: cannot read {path}: {error.strerror}") from None
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TokenSourceError(f"--jwt-private-key: {path} is not an unencrypted PEM private key") from None


# -- from a file ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenEntry:
    token: str
    line: int
    identity: str | None = None
    exp: float | None = None

    def name(self) -> str:
        """`line 3 (bob)`: the identity quoted when it holds what would break the line."""
        if not self.identity:
            return f"line {self.line}"
        shown = self.identity if control_character(self.identity) is None else repr(self.identity)
        return f"line {self.line} ({shown})"


class FileTokens:
    """Pre-issued tokens, round-robin: each identity always gets the same one."""

    option = "--tokens-file"

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = entries
        self._given: dict[str, int] = {}
        self._lock = threading.Lock()

    def token(self, identity: str, ttl: float = 3600.0) -> str:
        with self._lock:
            index = self._given.get(identity)
            if index is None:
                index = self._given[identity] = len(self._given) % len(self.entries)
        return self.entries[index].token

    def expiring(self, run_time: float | None, now: float) -> list[str]:
        """A warning line per token that expires before the run ends."""
        if not run_time:
            return []
        end = now + run_time
        return [f"--tokens-file {entry.name()}: the token expires {entry.exp - now:.0f}s into a {run_time:g}s run; "
                "connections made after that will be refused" for entry in self.entries
                if entry.exp is not None and entry.exp < end]


def read_tokens_file(path: str, now: float) -> FileTokens:
    try:
        text = Path(path).read_bytes().decode("utf-8")  # no newline translation: a lone CR stays, to be refused
    except (OSError, UnicodeDecodeError) as error:
        raise TokenSourceError(f"--tokens-file: cannot read {path}: {getattr(error, 'strerror', None) or error}"
                               ) from None
    entries = []
    for number, raw in enumerate(text.split("\n"), 1):  # not splitlines(): a lone CR or \x0c is refused, not a line
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        identity = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise TokenSourceError(f"--tokens-file line {number}: not JSON (a JSON line needs "
                                       '{"identity": ..., "token": ...})') from None
            token = record.get("token") if isinstance(record, dict) else None
            if not isinstance(token, str) or not token:
                raise TokenSourceError(f"--tokens-file line {number}: no \"token\" string in the JSON line")
            identity = str(record.get("identity")) if record.get("identity") is not None else None
        else:
            token = line
        entry = TokenEntry(token, number, identity)
        entry = dataclasses.replace(entry, exp=checked(token, f"--tokens-file {entry.name()}"))
        if entry.exp is not None and entry.exp <= now:
            ago = now - entry.exp
            raise TokenSourceError(f"--tokens-file {entry.name()}: the token expired {ago:.0f}s ago; issue new tokens")
        entries.append(entry)
    if not entries:
        raise TokenSourceError(f"--tokens-file {path}: no tokens in it (one per line, or JSON lines)")
    return FileTokens(entries)


# -- from a login endpoint -------------------------------------------------------------------


class UrlTokens:
    """A token per identity from a login endpoint, kept until it is about to expire."""

    option = "--token-url"

    def __init__(self, url: str, body: str, field: str, context: ssl.SSLContext | None = None,
                 timeout: float = LOGIN_TIMEOUT, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.body = body
        self.field = field
        self.context = context
        self.timeout = timeout
        self.clock = clock
        self._held: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def token(self, identity: str, ttl: float = 3600.0) -> str:
        with self._lock:
            held = self._held.get(identity)
        if held is not None and (held[1] is None or held[1] - self.clock() > REFRESH_MARGIN):
            return held[0]
        token = self.fetch(identity)
        exp = checked(token, f"--token-url {self.url} for {identity}")
        with self._lock:
            self._held[identity] = (token, exp)
        return token

    def fetch(self, identity: str) -> str:
        """POST the body for `identity`; TokenSourceError names what went wrong (never the body)."""
        body = self.body.replace("{identity}", _json_text(identity)).encode()
        parts = urllib.parse.urlsplit(self.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            context = self.context or ssl.create_default_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                           "Accept": "application/json"})
            answer = conn.getresponse()
            data = answer.read(MAX_ANSWER + 1)
        except (OSError, http.client.HTTPException) as error:
            raise TokenSourceError(f"--token-url {self.url}: no answer ({error or type(error).__name__})") from None
        finally:
            conn.close()
        self.fetches += 1
        if 300 <= answer.status < 400:  # the POST body holds a password: never re-sent elsewhere
            raise TokenSourceError(f"--token-url {self.url} answered HTTP {answer.status} (a redirect, not "
                                   "followed: the body holds credentials): give the final URL")
        if answer.status != 200:
            raise TokenSourceError(f"--token-url {self.url} answered HTTP {answer.status} for {identity}: check "
                                   "--token-body (or $SOCKETPROOF_TOKEN_BODY)")
        try:
            value: Any = json.loads(data[:MAX_ANSWER])
        except (ValueError, RecursionError):
            raise TokenSourceError(f"--token-url {self.url} did not answer JSON") from None
        for part in self.field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            raise TokenSourceError(f"--token-url {self.url}: no token string at --token-field {self.field!r} "
                                   "in the answer")
        return value


def _json_text(value: str) -> str:
    """`value` as it goes inside a JSON string (the template's quotes are its own)."""
    return json.dumps(value)[1:-1]


def url_tokens(parsed: Any, context: ssl.SSLContext | None) -> UrlTokens:
    url = str(getattr(parsed, "token_url", "") or "").strip()
    if not url.startswith(("http://", "https://")):
        raise TokenSourceError(f"--token-url must be an http:// or https:// URL, got {url!r}")
    body = str(getattr(parsed, "token_body", "") or "") or '{"username": "{identity}"}'
    try:
        json.loads(body.replace("{identity}", "probe"))
    except ValueError:
        raise TokenSourceError("--token-body must be a JSON template, e.g. "
                               '\'{"username": "{identity}", "password": "..."}\'') from None
    field = str(getattr(parsed, "token_field", "") or DEFAULT_TOKEN_FIELD).strip()
    return UrlTokens(url, body, field, context)


def source_from(parsed: Any, secret: str, audience: str | None, context: ssl.SSLContext | None = None,
                now: float | None = None) -> TokenSource:
    """The run's one token source, as the options say (at most one of file, URL, minted)."""
    tokens_file = str(getattr(parsed, "tokens_file", "") or "")
    token_url = str(getattr(parsed, "token_url", "") or "")
    if tokens_file and token_url:
        raise TokenSourceError("--tokens-file and --token-url are two token sources: give one")
    if tokens_file:
        return read_tokens_file(tokens_file, time.time() if now is None else now)
    if token_url:
        return url_tokens(parsed, context)
    return minted(parsed, secret, audience)
