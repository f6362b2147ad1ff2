"""What a deployed service wants in the upgrade request beyond the protocol: headers (API keys,
cookies), an Origin, a subprotocol, query parameters.

From the options (--header 'Name: value', --origin, --subprotocol, --query name=value) and from
the environment, which keeps values out of shell history and CI logs:
`SOCKETPROOF_HEADER_<NAME>` (underscores become dashes: SOCKETPROOF_HEADER_X_API_KEY is
`X-API-KEY`) and `SOCKETPROOF_QUERY_<name>` (the name as written). A header whose name says
it carries a credential (Authorization, Cookie, X-API-Key, ...) is a secret: its value is
redacted from the page, the logs and the reports (`secret_values`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from client.tokens import control_character

HEADER_ENV = "SOCKETPROOF_HEADER_"
QUERY_ENV = "SOCKETPROOF_QUERY_"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP header name (RFC 9110 token)."""
_SECRET_NAME = re.compile(r"auth|cookie|token|secret|key|session|pass|credential|sig|jwt|bearer|otp", re.I)
"""A header or query name that says it carries a credential (pass: password, passwd, passphrase;
sig: signature, X-Amz-Signature, sig=...)."""
RESERVED = frozenset({"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                      "sec-websocket-protocol", "origin", "content-length"})
"""Set by the WebSocket handshake itself (or by --origin/--subprotocol): not a --header."""


class ExtrasError(ValueError):
    """A handshake extra no run can use (the line names the option)."""


@dataclasses.dataclass(frozen=True)
class HandshakeExtras:
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    origin: str | None = None
    subprotocols: tuple[str, ...] = ()
    query: dict[str, str] = dataclasses.field(default_factory=dict)

    def secret_values(self) -> list[str]:
        """Values of headers that carry credentials (and of cookies, each one), for redaction."""
        found: list[str] = []
        for name, value in self.headers.items():
            if is_secret_name(name):
                found.append(value)
                if name.lower() == "cookie":
                    found.extend(part.split("=", 1)[1].strip() for part in value.split(";") if "=" in part)
        for name, value in self.query.items():
            if is_secret_name(name):
                found.append(value)
        return [value for value in found if value]

    def apply(self, client: Any) -> None:
        """Put the extras on a client (client/client.py): before its connect()."""
        if self.headers:
            client.headers = {**client.headers, **self.headers}
        client.origin = self.origin
        if self.query:
            client.query = {**client.query, **self.query}
        client.subprotocols = self.subprotocols


def is_secret_name(name: str) -> bool:
    """A header or query parameter whose name says it carries a credential."""
    return bool(_SECRET_NAME.search(name))



def parse_header(raw: str, flag: str = "--header") -> tuple[str, str]:
    name, sep, value = str(raw).partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or not _TOKEN.match(name):
        raise ExtrasError(f"{flag} must be 'Name: value', e.g. 'X-API-Key: abc', got a value without a valid name")
    bad = control_character(value, allow_tab=True)
    if bad is not None:  # a CR/LF would end the header and start another (websocket-client does not check)
        raise ExtrasError(f"{flag} {name}: the value holds a control character ({bad}); give one line of text")
    if name.lower() in RESERVED:
        hint = {"origin": "use --origin", "sec-websocket-protocol": "use --subprotocol"}.get(name.lower(),
                                                                                           "the handshake sets it")
        raise ExtrasError(f"{flag} {name}: {hint}")
    return name, value


def parse_query(raw: str, flag: str = "--query") -> tuple[str, str]:
    name, sep, value = str(raw).partition("=")
    if not sep or not name.strip():
        raise ExtrasError(f"{flag} must be name=value, e.g. tenant=acme")
    return name.strip(), value


def extras_from(parsed: Any, environ: Mapping[str, str]) -> HandshakeExtras:
    """The extras from the options, then the environment (an option given both ways: the option wins)."""
    headers: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if name.startswith(HEADER_ENV) and len(name) > len(HEADER_ENV):
            header, value = parse_header(f"{name[len(HEADER_ENV):].replace('_', '-')}: {value}", name)
            headers[header] = value
    for raw in _listed(getattr(parsed, "header", None)):
        header, value = parse_header(raw)
        headers = {k: v for k, v in headers.items() if k.lower() != header.lower()}
        headers[header] = value
    query: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if name.startswith(QUERY_ENV) and len(name) > len(QUERY_ENV):
            query[name[len(QUERY_ENV):]] = value
    for raw in _listed(getattr(parsed, "query", None)):
        key, value = parse_query(raw)
        query[key] = value
    origin = str(getattr(parsed, "origin", "") or "").strip() or None
    if origin is not None and (control_character(origin) is not None or "://" not in origin):
        raise ExtrasError(f"--origin must be a URL origin like https://app.example.com, got {origin!r}")
    subprotocols = tuple(p.strip() for p in str(getattr(parsed, "subprotocol", "") or "").split(",") if p.strip())
    for protocol in subprotocols:
        if not _TOKEN.match(protocol):
            raise ExtrasError(f"--subprotocol: {protocol!r} is not a valid subprotocol name")
    return HandshakeExtras(headers, origin, subprotocols, query)


def _listed(value: Any) -> Iterable[str]:
    if not value:
        return ()
    return [value] if isinstance(value, str) else [str(item) for item in value]
