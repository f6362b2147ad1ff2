"""--publish-url: the request a publish makes, the options' one-line errors, and a real POST."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from socketproof.target.http_publish import (
    DEFAULT_BODY,
    HttpPublisher,
    PublishFailed,
    PublishOptionError,
    publisher_from,
)


def options(**values: Any) -> types.SimpleNamespace:
    defaults = {"publish_url": "", "publish_method": "POST", "publish_body": DEFAULT_BODY}
    return types.SimpleNamespace(**{**defaults, **values})


def test_the_templates_take_the_channel_and_the_stamp_as_json_strings() -> None:
    publisher = HttpPublisher("http://h/api/rooms/$channel/notify", headers={"X-API-Key": "k"})
    url, headers, body = publisher.request("room 1/a", 'he said "hi"', "tok")
    assert url == "http://h/api/rooms/room%201%2Fa/notify"
    assert json.loads(body) == {"channel": "room 1/a", "data": 'he said "hi"'}
    assert headers == {"Content-Type": "application/json", "X-API-Key": "k", "Authorization": "Bearer tok"}


def test_an_authorization_header_of_the_run_wins_over_the_users_token() -> None:
    _url, headers, _body = HttpPublisher("http://h/x", headers={"authorization": "Basic abc"}).request("c", "s", "tok")
    assert headers["authorization"] == "Basic abc" and "Authorization" not in headers


@pytest.mark.parametrize(("values", "expected"), [
    ({"publish_url": "ftp://h/x"}, "--publish-url must be an http:// or https:// URL"),
    ({"publish_url": "http://h/x", "publish_method": "GET"}, "--publish-method must be one of POST, PUT, PATCH"),
    ({"publish_url": "http://h/x", "publish_body": '{"channel": $channel}'}, "--publish-body must contain $stamp"),
    ({"publish_url": "http://h/x", "publish_body": '{"data": $stamp'}, "--publish-body must be JSON"),
])
def test_bad_options_are_one_line_naming_the_option(values: dict[str, str], expected: str) -> None:
    with pytest.raises(PublishOptionError, match=expected.replace("$", r"\$")):
        publisher_from(options(**values), {}, None)


def test_no_url_means_no_publisher() -> None:
    assert publisher_from(options(), {}, None) is None


@contextlib.contextmanager
def backend(status: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP API that keeps every request it gets and answers `status`."""
    got: list[dict[str, Any]] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            got.append({"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


def test_a_real_post_carries_the_stamp_and_the_token() -> None:
    with backend(202) as (base, got):
        publisher = publisher_from(options(publish_url=base + "/api/notify"), {"X-Tenant": "t"}, None)
        assert publisher is not None
        assert publisher.publish("room-1", '{"stamp": 1}', "tok") >= 0
    assert len(got) == 1 and got[0]["path"] == "/api/notify"
    assert json.loads(got[0]["body"]) == {"channel": "room-1", "data": '{"stamp": 1}'}
    assert got[0]["headers"]["Authorization"] == "Bearer tok" and got[0]["headers"]["X-Tenant"] == "t"


def test_a_refusal_and_no_answer_are_named_failures() -> None:
    with backend(500) as (base, _got):
        with pytest.raises(PublishFailed, match="publish_refused: POST /api/notify answered HTTP 500"):
            HttpPublisher(base + "/api/notify").publish("c", "s", None)
    with pytest.raises(PublishFailed, match="publish_unreachable"):  # the server is gone now
        HttpPublisher(base + "/api/notify", timeout=2).publish("c", "s", None)
