"""HTTP requests safe to send credentials with: a GET of the server's metrics endpoints (`/stats`),
and one request with a body that follows no redirect (`send`: --publish-url's publishes).

urllib follows redirects to any host and keeps the Authorization header on the way, so a
target (or anything on the path) that answers 302 to another host would receive the admin
token. Here a redirect is followed only within the same origin (scheme, host, port), at most
MAX_REDIRECTS times, and never with the credentials: they go to the URL asked for and nowhere
else. One deadline covers the whole exchange, redirects and body included.
"""

from __future__ import annotations

import dataclasses
import http.client
import ssl
import time
import urllib.parse
from collections.abc import Mapping

MAX_REDIRECTS = 3
MAX_BODY = 8 * 1024 * 1024
"""A metrics document is small; a bigger body is refused rather than read into memory."""
REDIRECTS = (301, 302, 303, 307, 308)
CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
"""Headers that never follow a redirect, even within the origin."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class HttpAnswer:
    """The final answer: any status (the caller decides what a 401 or 500 means)."""

    status: int
    body: bytes
    content_type: str


class HttpGetError(Exception):
    """No answer could be had: bad URL, unreachable, timed out, too big, or a redirect refused."""


class RedirectRefused(HttpGetError):
    """The server redirected to another origin (or too many times): not followed."""


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; HttpGetError for anything else."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise HttpGetError(f"not an http:// or https:// URL: {url!r}")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise HttpGetError(f"bad port in {url!r}") from None
    return scheme, parts.hostname.lower(), port


def get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0, context: ssl.SSLContext | None = None
) -> HttpAnswer:
    """GET `url` with `headers` within `timeout` seconds in all; see the module docstring. `context`
    is the run's TLS trust and client certificate for https:// (socketproof/target/tls.py; None: the system's)."""
    deadline = time.monotonic() + timeout
    start = origin(url)
    sent = dict(headers or {})
    for _hop in range(MAX_REDIRECTS + 1):
        status, location, body, content_type = _once(url, sent, deadline, context)
        if status not in REDIRECTS or location is None:
            return HttpAnswer(status, body, content_type)
        target = urllib.parse.urljoin(url, location)
        try:
            target_origin = origin(target)
        except HttpGetError:
            target_origin = None
        if target_origin != start:
            raise RedirectRefused(f"{url} redirected ({status}) to another origin, not followed: {target}")
        url = target
        sent = {name: value for name, value in sent.items() if name.lower() not in CREDENTIALS}
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects from {url}")


def send(method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float = 5.0,
         context: ssl.SSLContext | None = None) -> HttpAnswer:
    """One request with a body within `timeout` seconds; a redirect is an answer, never followed
    (the body and the credentials go to the URL asked for and nowhere else)."""
    status, _location, answer, content_type = _once(url, headers, time.monotonic() + timeout, context, method, body)
    return HttpAnswer(status, answer, content_type)


def _once(
    url: str, headers: Mapping[str, str], deadline: float, context: ssl.SSLContext | None = None,
    method: str = "GET", body: bytes | None = None,
) -> tuple[int, str | None, bytes, str]:
    scheme, host, port = origin(url)
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    remaining = _remaining(url, deadline)
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=remaining, context=context or ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=remaining)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(_remaining(url, deadline))
            chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BODY:
                raise HttpGetError(f"{url} answered more than {MAX_BODY} bytes")
            chunks.append(chunk)
        return response.status, response.getheader("Location"), b"".join(chunks), response.getheader("Content-Type", "")
    except TimeoutError:
        raise HttpGetError(f"{url} did not answer within the time allowed") from None
    except (OSError, http.client.HTTPException) as error:
        raise HttpGetError(f"{url}: {error or type(error).__name__}") from None
    finally:
        conn.close()


def _remaining(url: str, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HttpGetError(f"{url} did not answer within the time allowed")
    return left
