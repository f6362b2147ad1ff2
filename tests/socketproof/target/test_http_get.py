"""socketproof.target.http_get and the cleanup check's /stats read against real HTTP servers on
loopback that redirect, record what they received, hang, or talk too much (issue 12, finding 6)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from locust.env import Environment

from socketproof.target import http_get
from socketproof.verdicts.run_checker import CheckOptions, RunChecker


class Recorder:
    """What one server received: (path, Authorization header or None, Cookie or None)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None, str | None]] = []


@contextlib.contextmanager
def http_server(answer: Any) -> Iterator[tuple[str, Recorder]]:
    """A real HTTP server on a free loopback port; `answer(handler, base)` writes each response."""
    recorder = Recorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            recorder.requests.append((self.path, self.headers.get("Authorization"), self.headers.get("Cookie")))
            answer(self, base)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        assert not thread.is_alive()


def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def stats_server(handler: http.server.BaseHTTPRequestHandler, base: str) -> None:
    reply(handler, 200, b'{"connections": 0}', Content_Type="application/json")


def redirect_to(target: str, status: int = 302) -> Any:
    def answer(handler: http.server.BaseHTTPRequestHandler, base: str) -> None:
        reply(handler, status, Location=target if "://" in target or target.startswith("/") else base + target)

    return answer


AUTH = {"Authorization": "Bearer admin-token-secret", "Cookie": "session=1"}


def test_a_plain_answer_carries_status_body_and_type() -> None:
    with http_server(stats_server) as (base, seen):
        answer = http_get.get(base + "/stats?x=1", AUTH)
    assert answer == http_get.HttpAnswer(200, b'{"connections": 0}', "application/json")
    assert seen.requests == [("/stats?x=1", AUTH["Authorization"], "session=1")]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_origin_is_not_followed_and_gets_no_token(status: int) -> None:
    with http_server(stats_server) as (other, elsewhere):
        with http_server(redirect_to(other + "/steal", status)) as (base, seen):
            with pytest.raises(http_get.RedirectRefused, match="another origin"):
                http_get.get(base + "/stats", AUTH)
    assert elsewhere.requests == []
    assert [path for path, _, _ in seen.requests] == ["/stats"]


def test_a_same_origin_redirect_is_followed_without_credentials() -> None:
    def answer(handler: http.server.BaseHTTPRequestHandler, base: str) -> None:
        if handler.path == "/stats":
            reply(handler, 302, Location="/stats/")
        else:
            stats_server(handler, base)

    with http_server(answer) as (base, seen):
        result = http_get.get(base + "/stats", AUTH)
    assert result.status == 200
    assert seen.requests == [("/stats", AUTH["Authorization"], "session=1"), ("/stats/", None, None)]


def test_other_scheme_or_port_is_another_origin() -> None:
    with http_server(redirect_to("https://127.0.0.1:1/stats")) as (base, _):
        with pytest.raises(http_get.RedirectRefused):
            http_get.get(base + "/stats", AUTH)
    with http_server(redirect_to("ftp://127.0.0.1/stats")) as (base, _):
        with pytest.raises(http_get.RedirectRefused):
            http_get.get(base + "/stats", AUTH)


def test_a_redirect_loop_stops() -> None:
    with http_server(redirect_to("/stats")) as (base, seen):
        with pytest.raises(http_get.RedirectRefused, match="more than"):
            http_get.get(base + "/stats", AUTH)
    assert len(seen.requests) == http_get.MAX_REDIRECTS + 1


def test_a_server_that_never_answers_costs_the_timeout_and_no_more() -> None:
    with socket.socket() as listener:  # accepts TCP (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        started = time.monotonic()
        with pytest.raises(http_get.HttpGetError, match="did not answer"):
            http_get.get(f"http://127.0.0.1:{listener.getsockname()[1]}/stats", AUTH, timeout=0.5)
        assert time.monotonic() - started < 2.0


def test_refused_connection_bad_url_and_huge_body_are_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(http_get.HttpGetError):
        http_get.get(f"http://127.0.0.1:{port}/stats")
    with pytest.raises(http_get.HttpGetError, match="not an http"):
        http_get.get("ws://127.0.0.1:1/stats")

    def huge(handler: http.server.BaseHTTPRequestHandler, base: str) -> None:
        try:
            reply(handler, 200, b"x" * (http_get.MAX_BODY + 1))
        except OSError:
            pass  # the client hung up after MAX_BODY bytes

    with http_server(huge) as (base, _):
        with pytest.raises(http_get.HttpGetError, match="more than"):
            http_get.get(base + "/stats")


def checker_for(host: str) -> RunChecker:
    options = CheckOptions(("cleanup",), (), "reports", False, "admin-token-secret", 0.0, "unused-secret")
    return RunChecker(Environment(host=host), options)


def test_the_cleanup_checks_stats_read_never_sends_the_admin_token_elsewhere() -> None:
    """Before: urllib followed the 302 and the other server received 'Bearer admin-token-secret'."""
    with http_server(stats_server) as (other, elsewhere):
        with http_server(redirect_to(other + "/stats")) as (base, seen):
            assert checker_for(base.replace("http://", "ws://")).server_stats() is None
    assert elsewhere.requests == []
    assert seen.requests == [("/stats", "Bearer admin-token-secret", None)]


def test_the_cleanup_checks_stats_read_still_reads_stats() -> None:
    with http_server(stats_server) as (base, seen):
        assert checker_for(base).server_stats() == json.loads(b'{"connections": 0}')
