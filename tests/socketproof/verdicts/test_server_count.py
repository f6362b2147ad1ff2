"""socketproof.verdicts.server_count: the count in a Prometheus text or JSON body (pure), and one real GET.

`CountEndpoint` is a tiny real HTTP server on 127.0.0.1:0 whose answer the test controls;
test_checking.py reuses it for the cleanup check's before/after readings.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import locust  # noqa: F401 - first: gevent monkey-patches before anything imports ssl
import pytest

from socketproof.verdicts.server_count import CountError, parse_count, read_count, split_source

PROMETHEUS = "text/plain; version=0.0.4"


class CountEndpoint:
    """What the endpoint answers right now: a Prometheus gauge `ws_connections` by default."""

    def __init__(self) -> None:
        self.count = 0
        self.status = 200
        self.body: bytes | None = None
        """Set: answered as it is (with `content_type`), whatever `count` says."""
        self.content_type = PROMETHEUS
        self.reads = 0
        self.url = ""

    def answer(self) -> tuple[int, str, bytes]:
        self.reads += 1
        if self.body is not None:
            return self.status, self.content_type, self.body
        text = f"# HELP ws_connections open WebSockets\n# TYPE ws_connections gauge\nws_connections {self.count}\n"
        return self.status, self.content_type, text.encode()


@contextlib.contextmanager
def count_endpoint() -> Iterator[CountEndpoint]:
    """A real HTTP server on a free loopback port serving `endpoint.answer()`; stopped and checked gone."""
    endpoint = CountEndpoint()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, content_type, body = endpoint.answer()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive(), "the count endpoint did not stop"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Prometheus text ----------------------------------------------------------------


def test_prometheus_samples_with_labels_are_summed_and_comments_skipped() -> None:
    body = (
        b"# HELP ws_connections open connections\n"
        b"# TYPE ws_connections gauge\n"
        b"ws_connections_total 99\n"  # another metric with the name as a prefix
        b'ws_connections{worker="a",path="/ws"} 3\n'
        b'ws_connections{worker="b"} 4 1700000000000\n'  # with a timestamp
        b"\n"
        b"other 7\n"
    )
    assert parse_count(body, PROMETHEUS, "ws_connections") == 7


def test_prometheus_float_values_and_a_bare_sample() -> None:
    assert parse_count(b"chat_connections 12.0\n", PROMETHEUS, "chat_connections") == 12
    assert parse_count(b"chat_connections 0\n", "", "chat_connections") == 0


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf"])
def test_prometheus_a_value_that_is_no_count_is_an_error(value: str) -> None:
    with pytest.raises(CountError, match="ws_connections"):
        parse_count(f"ws_connections {value}\n".encode(), PROMETHEUS, "ws_connections")


def test_prometheus_a_value_that_is_not_a_number_is_an_error() -> None:
    with pytest.raises(CountError, match=r"not a number: 'many'"):
        parse_count(b"ws_connections many\n", PROMETHEUS, "ws_connections")


def test_prometheus_a_missing_metric_is_an_error_naming_it() -> None:
    body = b"# TYPE ws_connections gauge\n# ws_connections 5 (a comment, not a sample)\nws_connections_total 5\n"
    with pytest.raises(CountError, match=r"^no metric 'ws_connections' in the endpoint's text$"):
        parse_count(body, PROMETHEUS, "ws_connections")


# -- JSON ---------------------------------------------------------------------------


def test_json_fields_top_level_and_dotted() -> None:
    assert parse_count(b'{"connections": 4}', "application/json", "connections") == 4
    body = b'{"stats": {"ws": {"connections": 2.0}}, "connections": 9}'
    assert parse_count(body, "application/json", "stats.ws.connections") == 2


def test_json_is_recognised_without_its_content_type() -> None:
    assert parse_count(b'  {"n": 3}', "text/plain", "n") == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"connections": "4"}', "is '4', not a number"),
        (b'{"connections": true}', "is True, not a number"),
        (b'{"connections": null}', "is None, not a number"),
        (b'{"connections": {"open": 1}}', "not a number"),
        (b'{"connections": 1e999}', "not a number"),  # JSON's infinity
        (b'{"other": 1}', "no field 'connections'"),
        (b"[1, 2]", "no field 'connections'"),
        (b"{not json", "not JSON"),
    ],
)
def test_json_without_a_usable_number_is_an_error(body: bytes, message: str) -> None:
    with pytest.raises(CountError, match=message):
        parse_count(body, "application/json", "connections")


def test_json_a_dotted_path_through_a_non_object_is_an_error() -> None:
    with pytest.raises(CountError, match=r"no field 'stats.connections'"):
        parse_count(b'{"stats": [1]}', "application/json", "stats.connections")


# -- hostile endpoints (issue 24, finding 8) ----------------------------------------------------

DEEP = b"[" * 20_000 + b"]" * 20_000


@pytest.mark.parametrize(
    ("body", "content_type", "name", "message"),
    [
        (b'{"connections": 1' + b"0" * 400 + b"}", "application/json", "connections",
         r"^field 'connections' is an integer of about 401 digits, not a number of connections$"),
        (b'{"connections": -1' + b"0" * 400 + b"}", "application/json", "connections", "about 401 digits"),
        (b'{"connections": 1e300}', "application/json", "connections", r"is 1e\+300, not a number of connections"),
        (b'{"connections": ' + DEEP + b"}", "application/json", "connections", "nested too deeply"),
        (DEEP, "", "connections", "nested too deeply"),
        (b"ws_connections 1e308\nws_connections 1e308\n", PROMETHEUS, "ws_connections",
         "metric 'ws_connections' is 1e\\+308, not a number of connections"),
        (b"ws_connections 9007199254740992\nws_connections 9007199254740992\n", PROMETHEUS, "ws_connections",
         r"metric 'ws_connections' \(summed\) is 1.8\d*e\+16"),
    ],
)
def test_a_hostile_body_is_a_count_error_never_an_overflow_or_recursion(
        body: bytes, content_type: str, name: str, message: str) -> None:
    """Before: OverflowError (math.isfinite of a huge int, int() of an overflowed sum),
    RecursionError (deep JSON), or an absurd count taken as it came."""
    with pytest.raises(CountError, match=message) as caught:
        parse_count(body, content_type, name)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_split_source_keeps_the_url_whole() -> None:
    assert split_source("http://h:1/metrics?x=1#ws_connections") == ("http://h:1/metrics?x=1", "ws_connections")


# -- one real GET -------------------------------------------------------------------


def test_read_count_from_a_real_endpoint() -> None:
    with count_endpoint() as endpoint:
        endpoint.count = 5
        assert read_count(endpoint.url + "#ws_connections") == 5
        endpoint.body, endpoint.content_type = b'{"stats": {"connections": 2}}', "application/json"
        assert read_count(endpoint.url + "#stats.connections") == 2
        assert endpoint.reads == 2


def test_read_count_says_why_it_has_no_count() -> None:
    with count_endpoint() as endpoint:
        endpoint.status = 500
        with pytest.raises(CountError, match=r"answered HTTP 500$"):
            read_count(endpoint.url + "#ws_connections")
    url = f"http://127.0.0.1:{free_port()}/metrics"
    with pytest.raises(CountError, match=rf"^cannot read {url}: "):
        read_count(url + "#ws_connections", timeout=2.0)
