"""Publishing through the service's own backend: one HTTP request per message (--publish-url).

Feeds a backend originates (notifications, tickers, dashboards) do not come from WebSocket
clients. With --publish-url, a Locust user sends each stamped message to the service's API
(e.g. `POST /api/notify`) while the users' WebSocket connections listen: the stamp travels the
real path, so the loss, ordering and duplicates checks are exact for that feed.

The body template is JSON text where `$channel` and `$stamp` stand for JSON strings (quotes
included): the channel's name and the stamped payload. `$channel` may also appear in the URL
(URL-quoted). The run's credential headers (--header) go with every request, and the user's
token as `Authorization: Bearer` unless a --header sets Authorization.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from socketproof.target import http_get

DEFAULT_BODY = '{"channel": $channel, "data": $stamp}'
METHODS = ("POST", "PUT", "PATCH")


class PublishOptionError(ValueError):
    """--publish-url / --publish-method / --publish-body no run can use (one line, exit 2)."""


class PublishFailed(Exception):
    """The backend did not take a publish: no answer, or not a 2xx (the text says which)."""


@dataclasses.dataclass(frozen=True)
class HttpPublisher:
    url: str
    method: str = "POST"
    body: str = DEFAULT_BODY
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    timeout: float = 10.0
    context: ssl.SSLContext | None = None

    def request(self, channel: str, payload: str, token: str | None) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of one publish: the templates filled in, the credentials added."""
        url = self.url.replace("$channel", urllib.parse.quote(channel, safe=""))
        body = self.body.replace("$channel", json.dumps(channel)).replace("$stamp", json.dumps(payload))
        headers = {"Content-Type": "application/json", **self.headers}
        if token and not any(name.lower() == "authorization" for name in headers):
            headers["Authorization"] = f"Bearer {token}"
        return url, headers, body.encode()

    def publish(self, channel: str, payload: str, token: str | None) -> float:
        """Send one publish; the seconds it took. PublishFailed when the backend did not take it."""
        url, headers, body = self.request(channel, payload, token)
        started = time.perf_counter()
        try:
            answer = http_get.send(self.method, url, headers, body, self.timeout, self.context)
        except http_get.HttpGetError as error:
            raise PublishFailed(f"publish_unreachable: {error}") from None
        if not 200 <= answer.status < 300:
            raise PublishFailed(f"publish_refused: {self.method} {urllib.parse.urlsplit(url).path} answered HTTP "
                                f"{answer.status}")
        return time.perf_counter() - started


def publisher_from(parsed: Any, headers: Mapping[str, str], context: ssl.SSLContext | None,
                   timeout: float = 10.0) -> HttpPublisher | None:
    """From --publish-url/--publish-method/--publish-body (None without --publish-url)."""
    url = str(getattr(parsed, "publish_url", "") or "").strip()
    if not url:
        return None
    parts = urllib.parse.urlsplit(url.replace("$channel", "c"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublishOptionError(f"--publish-url must be an http:// or https:// URL, got {url!r}")
    method = str(getattr(parsed, "publish_method", "") or "POST").strip().upper()
    if method not in METHODS:
        raise PublishOptionError(f"--publish-method must be one of {', '.join(METHODS)}, got {method!r}")
    body = str(getattr(parsed, "publish_body", "") or DEFAULT_BODY)
    if "$stamp" not in body:
        raise PublishOptionError("--publish-body must contain $stamp (where the stamped message goes), "
                                 f"e.g. {DEFAULT_BODY}")
    try:
        json.loads(body.replace("$channel", '"c"').replace("$stamp", '"s"'))
    except ValueError:
        raise PublishOptionError(f"--publish-body must be JSON with $channel and $stamp as values, got {body!r}, "
                                 f"e.g. {DEFAULT_BODY}") from None
    return HttpPublisher(url, method, body, dict(headers), timeout, context)


def add_publish_arguments(group: Any) -> None:
    group.add_argument("--publish-url", default="", include_in_web_ui=False,
                       help="publish through your backend instead of the WebSocket: one HTTP request per message, "
                       "e.g. http://host/api/notify ($channel allowed in the URL); users keep listening on WebSockets")
    group.add_argument("--publish-method", default="POST", include_in_web_ui=False,
                       help=f"HTTP method of --publish-url: {', '.join(METHODS)} (default POST)")
    group.add_argument("--publish-body", default=DEFAULT_BODY, include_in_web_ui=False,
                       help="JSON body template of --publish-url: $channel and $stamp stand for JSON strings "
                       f"(default {DEFAULT_BODY})")
