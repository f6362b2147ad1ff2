"""The run's URLs in one place: what a connection dials, what an error text may show, where
the target's HTTP endpoints live, and when two URLs name the same target.

Pure functions over strings, no I/O. `client` is the lowest layer, so the rest of the
project (the pre-flight, the fault proxy, the verdicts, the web UI's start guard) imports
these from here rather than keeping its own copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

_AS_WS = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_AS_HTTP = {"ws": "http", "wss": "https"}


def normalize_url(url: str, default_path: str = "/ws") -> str:
    """Accept ws/wss/http/https (http(s) becomes ws(s)); a bare host (Locust's --host) gets
    `default_path`, whose own query comes first. ValueError for anything else."""
    parts = urlsplit(url.strip())
    scheme = _AS_WS.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a ws://, wss://, http:// or https:// URL: {url!r}")
    if parts.path in ("", "/"):
        path, _, query = default_path.partition("?")
        query = "&".join(q for q in (query, parts.query) if q)
    else:
        path, query = parts.path, parts.query
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def has_path(url: str) -> bool:
    """Whether `url` names a path of its own (then no adapter's or session's path replaces it)."""
    return urlsplit(url.strip()).path not in ("", "/")


def with_query(url: str, params: Mapping[str, Any]) -> str:
    """`url` with `params` appended to its query (form-encoded); unchanged when there are none."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def upgrade_url(url: str, session_path: str, path_given: bool, params: Mapping[str, Any]) -> str:
    """The URL of one upgrade request: `url` (normalised) with the session's own path unless the
    user gave a path (`path_given`), then every query parameter."""
    if session_path and not path_given:
        url = normalize_url(url.split("/", 3)[0] + "//" + urlsplit(url).netloc, session_path)
    return with_query(url, params)


def ws_url(host: str, ws_path: str | None) -> str:
    """The URL every user connects to: --host with --ws-path appended (a bare host then gets
    the adapter's default path from `normalize_url`)."""
    return host.rstrip("/") + (ws_path or "")


def shown_url(url: str) -> str:
    """The URL as error texts may carry it: no query (a --token-query token, a --query key), no
    user:password. Locust keys failures on the text, so the Failures tab, --html and --csv show it."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def target_url(host: str, ws_path: str | None, default_path: str) -> str:
    """The URL the users connect to as the user wrote it (their scheme): --host with --ws-path,
    else with its own path, else with the adapter's default path (the pre-flight's messages)."""
    base = host.rstrip("/")
    if ws_path:
        return base + ws_path
    return base if "/" in base.split("://", 1)[-1] else base + default_path


def http_base(host: str) -> str:
    """`ws://h:p[/...]` or `http://h:p` -> `http://h:p` (wss -> https): where /stats lives."""
    scheme, _, rest = host.partition("://")
    return f"{_AS_HTTP.get(scheme, scheme)}://{rest.split('/', 1)[0]}"


def split_host(host: str) -> tuple[str, str]:
    """`ws://h:p/base` -> ('ws://h:p', '/base'); http(s) becomes ws(s) like the users' URLs."""
    parts = urlsplit(host.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", "")), parts.path.rstrip("/")


def same_target(url: str) -> str:
    """`url` reduced to what decides where traffic goes: scheme (http as ws), host, port and
    path, case-folded where it does not matter; two URLs of one target give the same text."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    return f"{_AS_WS.get(scheme, scheme)}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
