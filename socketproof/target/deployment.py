"""A deployed service's connection needs, in one place: TLS, handshake extras, the token source.

`build(parsed, environ)` makes it from the parsed options (tls.py, handshake_extras.py and
token_source.py beside this file), once per run and process (socketproof.run.context owns it),
and it is handed to everything that connects: the users (`apply` on each new client), the
pre-flight, and the HTTP reads of the cleanup check (`ssl_context`). Its options are declared here too.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from socketproof.target import handshake_extras, http_publish, tls, token_source
from socketproof.target.handshake_extras import HandshakeExtras
from socketproof.target.http_publish import HttpPublisher
from socketproof.target.tls import TlsSettings
from socketproof.target.token_source import FileTokens, MintedTokens, TokenSource, UrlTokens


class DeploymentError(ValueError):
    """An option of this module no run can use: one line naming it, exit 2."""


@dataclasses.dataclass
class Deployment:
    tls: TlsSettings
    ssl_context: ssl.SSLContext | None
    extras: HandshakeExtras
    tokens: TokenSource
    token_query: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    publisher: HttpPublisher | None = None
    """--publish-url: messages go through the service's backend over HTTP, not the WebSocket."""
    """Said at start-up and (--insecure) in checks.json's meta."""

    def token(self, identity: str, ttl: float = 3600.0) -> str:
        return self.tokens.token(identity, ttl)

    def apply(self, client: Any, token: str | None = None) -> Any:
        """Give a new client (client/client.py) the TLS context, the extras, and with
        --token-query the token as a query parameter."""
        client.ssl_context = self.ssl_context
        self.extras.apply(client)
        if self.token_query and token:
            client.query = {**client.query, self.token_query: token}
        return client

    def admin_minter(self) -> Any:
        """How the cleanup check gets its /stats token when the users' tokens are minted with a key."""
        tokens = self.tokens
        if isinstance(tokens, MintedTokens) and tokens.algorithm not in token_source.HMAC_ALGORITHMS:
            return tokens.admin_token
        return None

    def secret_values(self) -> list[str]:
        """Values never to show: credential headers and cookies, pre-issued and fetched tokens."""
        found = self.extras.secret_values()
        tokens = self.tokens
        if isinstance(tokens, FileTokens):
            found.extend(entry.token for entry in tokens.entries)
        elif isinstance(tokens, UrlTokens):
            found.extend(token for token, _exp in list(tokens._held.values()))
        return found

    @property
    def report_warnings(self) -> tuple[str, ...]:
        return (tls.INSECURE_WARNING,) if self.tls.insecure else ()


def build(parsed: Any, environ: Mapping[str, str], now: float | None = None) -> Deployment:
    """From Locust's parsed options; DeploymentError names the option that is wrong."""
    try:
        settings = tls.settings_from(parsed)
        context = settings.context()
        extras = handshake_extras.extras_from(parsed, environ)
        tokens = token_source.source_from(parsed, str(getattr(parsed, "jwt_secret", "") or ""),
                                          str(getattr(parsed, "jwt_audience", "") or "") or None, context, now)
        publisher = http_publish.publisher_from(parsed, extras.headers, context)
    except ValueError as error:
        raise DeploymentError(str(error)) from None
    token_query = str(getattr(parsed, "token_query", "") or "").strip() or None
    warnings = [tls.INSECURE_WARNING] if settings.insecure else []
    token_url = str(getattr(parsed, "token_url", "") or "").strip()
    if token_url.lower().startswith("http://") and not _is_loopback(urlsplit(token_url).hostname or ""):
        warnings.append(f"--token-url {token_url} is plain http://: the token body (a password?) and the tokens "
                        "cross the network in clear; use https://")
    if isinstance(tokens, FileTokens):
        run_time = getattr(parsed, "run_time", None)
        warnings.extend(tokens.expiring(float(run_time) if run_time else None, time.time() if now is None else now))
    return Deployment(settings, context, extras, tokens, token_query, warnings, publisher)


def _is_loopback(hostname: str) -> bool:
    try:
        return hostname == "localhost" or ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def add_deployment_arguments(group: Any) -> None:
    """TLS, handshake extras and token options. File paths, headers and secrets stay out of the
    web UI's form (Locust renders every value into the page)."""
    group.add_argument("--ca-file", default="", include_in_web_ui=False,
                       help="PEM bundle of the CA(s) that signed the server's certificate (wss://, https://), "
                       "e.g. a private staging CA (default: the system's trust store)")
    group.add_argument("--client-cert", default="", include_in_web_ui=False,
                       help="PEM client certificate for servers that require one (mutual TLS); the key may be in it")
    group.add_argument("--client-key", default="", include_in_web_ui=False,
                       help="PEM private key of --client-cert, when it is a file of its own")
    group.add_argument("--insecure", action="store_true", default=False, include_in_web_ui=False,
                       help="do not verify server certificates (a warning every run and in checks.json; "
                       "refused with --strict)")
    group.add_argument("--header", action="append", default=[], include_in_web_ui=False,
                       help="'Name: value' added to every WebSocket upgrade, repeatable (API keys, cookies); "
                       "or SOCKETPROOF_HEADER_<NAME>=value (underscores become dashes). Credential headers "
                       "(Authorization, Cookie, *key*, *token*...) are never shown in the page, logs or reports")
    group.add_argument("--origin", default="", help="Origin header of every WebSocket upgrade (default: none sent)")
    group.add_argument("--subprotocol", default="", is_secret=True,
                       help="Sec-WebSocket-Protocol to offer (comma list) when the protocol does not fix one "
                       "(or $SOCKETPROOF_SUBPROTOCOL; a secret: it may carry a bearer token)")
    group.add_argument("--query", action="append", default=[], include_in_web_ui=False,
                       help="name=value added to every WebSocket URL, repeatable; or SOCKETPROOF_QUERY_<name>=value")
    group.add_argument("--jwt-algorithm", default="HS256",
                       help=f"algorithm of minted tokens: {', '.join(token_source.ALGORITHMS)} (default HS256; "
                       "RS/ES/EdDSA need --jwt-private-key)")
    group.add_argument("--jwt-private-key", default="", include_in_web_ui=False,
                       help="PEM private key (unencrypted) that signs minted RS/ES/EdDSA tokens")
    group.add_argument("--jwt-claim", action="append", default=[], include_in_web_ui=False,
                       help="name=value claim in minted tokens, repeatable; JSON values allowed "
                       "(role=admin, scope='[\"chat\"]', iss=https://idp.example.com)")
    group.add_argument("--jwt-subject", default="{identity}",
                       help="'sub' of minted tokens, with {identity} for each user's identity (default {identity})")
    group.add_argument("--tokens-file", default="", include_in_web_ui=False,
                       help="pre-issued tokens instead of minted ones: one per line, or JSON lines "
                       "{\"identity\": ..., \"token\": ...}; used round-robin by identity")
    group.add_argument("--token-url", default="",
                       help="login endpoint issuing tokens: POST --token-body per identity before it connects, "
                       "the token read at --token-field")
    group.add_argument("--token-body", default="", is_secret=True,
                       help="JSON body template for --token-url, {identity} replaced per user (empty: "
                       "$SOCKETPROOF_TOKEN_BODY, else {\"username\": \"{identity}\"})")
    group.add_argument("--token-field", default=token_source.DEFAULT_TOKEN_FIELD,
                       help="dotted path of the token in --token-url's JSON answer (default access_token)")
    http_publish.add_publish_arguments(group)
    group.add_argument("--token-query", default="",
                       help="also send each user's token as this query parameter (e.g. access_token), any protocol")


def with_checks(checks: Any, deployment: Deployment) -> Any:
    """The checks' options (socketproof.verdicts.run_checker.CheckOptions) with this deployment's TLS context,
    /stats token minter and report warnings."""
    return dataclasses.replace(checks, ssl_context=deployment.ssl_context, admin_minter=deployment.admin_minter(),
                               warnings=deployment.report_warnings)
