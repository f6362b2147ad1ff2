"""The opening handshake as the proxy sees it: pure parsing and rewriting of HTTP heads.

The client's request goes upstream unchanged except for two headers: `Host` names the
upstream, and `Sec-WebSocket-Extensions` keeps only `permessage-deflate` offers (the one
extension the relay can carry), or none at all when a data-frame fault is on (a fault must
see plain messages). The server's answer goes back unchanged.
"""

from __future__ import annotations

import dataclasses

MAX_HEAD = 64 * 1024
"""Largest request or response head accepted (bytes up to the blank line)."""

PMD = "permessage-deflate"


class HeadError(ValueError):
    """A head that is not HTTP/1.1 the proxy can read."""


@dataclasses.dataclass(frozen=True)
class Head:
    """A parsed request or response head: the first line and the headers in order, as sent."""

    start: str
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    @property
    def is_upgrade(self) -> bool:
        """A WebSocket upgrade request (anything else is relayed as plain bytes)."""
        upgrade = (self.get("Upgrade") or "").lower()
        connection = (self.get("Connection") or "").lower()
        return "websocket" in upgrade and "upgrade" in connection

    @property
    def status(self) -> int:
        """A response's status code (0 when the start line has none)."""
        parts = self.start.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    def encode(self) -> bytes:
        lines = [self.start, *(f"{key}: {value}" for key, value in self.headers), "", ""]
        return "\r\n".join(lines).encode("latin-1")


def split_head(buffer: bytes) -> tuple[bytes, bytes] | None:
    """(head including the blank line, the bytes after it), or None when the head is not complete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise HeadError(f"no end of the HTTP head within {MAX_HEAD} bytes")
        return None
    return buffer[: end + 4], buffer[end + 4 :]


def parse_head(raw: bytes) -> Head:
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    if not lines or not lines[0] or " " not in lines[0]:
        raise HeadError("not an HTTP head")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise HeadError(f"bad header line {line[:60]!r}")
        headers.append((key.strip(), value.strip()))
    return Head(lines[0], tuple(headers))


@dataclasses.dataclass(frozen=True)
class Rewritten:
    """The request to send upstream, and what was done to its extension offers (for the log)."""

    head: Head
    removed: tuple[str, ...]
    """Extension offers taken out of the negotiation."""


def rewrite_request(request: Head, upstream_authority: str, plain_messages: bool) -> Rewritten:
    """Point `Host` at the upstream; keep only permessage-deflate offers, or none when `plain_messages`."""
    headers: list[tuple[str, str]] = []
    removed: list[str] = []
    kept: list[str] = []
    for key, value in request.headers:
        lowered = key.lower()
        if lowered == "host":
            headers.append((key, upstream_authority))
        elif lowered == "sec-websocket-extensions":
            for offer in (item.strip() for item in value.split(",")):
                if not offer:
                    continue
                if offer.split(";", 1)[0].strip().lower() == PMD and not plain_messages:
                    kept.append(offer)
                else:
                    removed.append(offer)
        else:
            headers.append((key, value))
    if kept:
        headers.append(("Sec-WebSocket-Extensions", ", ".join(kept)))
    return Rewritten(Head(request.start, tuple(headers)), tuple(removed))


def accepted_deflate(response: Head) -> str | None:
    """The permessage-deflate parameters the server accepted (`permessage-deflate; ...`), or None."""
    for value in response.get_all("Sec-WebSocket-Extensions"):
        for item in (part.strip() for part in value.split(",")):
            if item.split(";", 1)[0].strip().lower() == PMD:
                return item
    return None


def other_extensions(response: Head) -> list[str]:
    """Extensions the server accepted that were never offered through the proxy (a broken server)."""
    found = []
    for value in response.get_all("Sec-WebSocket-Extensions"):
        for item in (part.strip() for part in value.split(",")):
            if item and item.split(";", 1)[0].strip().lower() != PMD:
                found.append(item)
    return found
