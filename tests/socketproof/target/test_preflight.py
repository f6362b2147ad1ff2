"""socketproof.target.preflight: one real connection through the run's adapter, against real targets:
the reference server, a wrong secret, a port with nothing listening, a TCP listener that
never answers, a WebSocket server speaking another protocol, and a plain HTTP server.
(The wording of each rejection is tested in tests/user/test_messages.py.)"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator

import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
import pytest

from client.errors import ProtocolError, SocketproofError
from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import LoadOptions
from socketproof.target import preflight
from tests.socketproof.test_custom_adapter_runs import ADAPTER as JSON_CHAT
from tests.socketproof.verdicts.test_server_count import free_port
from apps.json_chat_server import chat_server
from tests.support.server import running_server

QUICK = 1.0
"""Seconds the pre-flight waits here (5 in a run): the silent targets cost this much each."""


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word; yields its ws:// URL."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        server.close()
        assert not thread.is_alive()


@contextlib.contextmanager
def plain_http_server() -> Iterator[str]:
    """An HTTP server that answers every GET with a 200 page, upgrade or not; yields its ws:// URL."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


def check(host: str, options: LoadOptions | None = None) -> preflight.Finding | None:
    options = options or LoadOptions()
    return preflight.check(host, options, timeout=QUICK, adapter=build_run_adapter(None, options))


def test_the_reference_server_passes_and_the_connection_is_closed() -> None:
    with running_server() as server:
        assert check(server.ws_url, LoadOptions(jwt_secret=server.secret)) is None
        server.wait_stats(connections=0)


def test_a_wrong_secret_is_fatal_and_names_jwt_secret() -> None:
    with running_server() as server:
        finding = check(server.ws_url, LoadOptions(jwt_secret="not-the-servers-secret"))
    assert finding is not None and finding.fatal, finding
    assert finding.message == (f"{server.ws_url} rejected the handshake (401 invalid_token): "
                               "check --jwt-secret (or $SOCKETPROOF_JWT_SECRET)")


def test_a_port_with_nothing_listening_is_fatal() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    finding = check(url)
    assert finding == preflight.Finding(
        True, f"cannot reach {url}/ws: connection refused; is the server running? (check --host)")


def test_a_listener_that_never_answers_is_fatal_after_the_timeout() -> None:
    """No valid start-up: a headless run exits 2 here instead of giving 0 requests (issue 12)."""
    with silent_listener() as url:
        started = time.monotonic()
        finding = check(url)
        waited = time.monotonic() - started
    assert finding == preflight.Finding(True, f"{url}/ws accepted the connection but sent no handshake answer "
                                              "within 1s: the server is hung or not a WebSocket server (check --host)")
    assert QUICK <= waited < QUICK + 2.0


def test_a_websocket_server_of_another_protocol_is_fatal_and_names_protocol() -> None:
    with chat_server() as url:
        finding = check(url)  # the socketproof adapter waits for a welcome the chat server never sends
        assert check(url, LoadOptions(protocol=JSON_CHAT)) is None, "its own adapter starts fine"
    assert finding is not None and finding.fatal, finding
    assert finding.message.startswith(f"{url}/ws upgraded but sent no socketproof start-up within 1s")
    assert finding.message.endswith("(check --protocol)")


def test_a_plain_http_server_is_fatal_not_a_websocket_endpoint() -> None:
    with plain_http_server() as url:
        finding = check(url)
    assert finding == preflight.Finding(
        True, f"{url}/ws is not a WebSocket endpoint (HTTP 200): check --host (the WebSocket server) and --ws-path")


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "ftp://127.0.0.1:21"])
def test_a_host_that_is_no_websocket_url_is_fatal(host: str) -> None:
    finding = check(host)
    assert finding is not None and finding.fatal and "--host must be" in finding.message


# -- started_wrong: the upgrade worked, the start-up did not ------------------------


def test_a_refusal_in_the_protocols_own_terms_is_fatal() -> None:
    adapter = build_run_adapter(None, LoadOptions())
    finding = preflight.started_wrong("ws://h/ws", adapter, ProtocolError("unexpected_frame", "expected welcome"))
    assert finding.fatal and finding.message.endswith(
        "is the server speaking the socketproof protocol? (check --protocol)"), finding
    secret = preflight.started_wrong("ws://h/ws", adapter, ProtocolError("invalid_token", "bad signature"))
    assert secret.fatal and "--jwt-secret" in secret.message


def test_an_odd_start_up_is_fatal_too() -> None:
    adapter = build_run_adapter(None, LoadOptions())
    finding = preflight.started_wrong("ws://h/ws", adapter, SocketproofError("closed while starting"))
    assert finding.fatal and "did not start as the socketproof protocol says" in finding.message


@contextlib.contextmanager
def endless_header_server() -> Iterator[str]:
    """Answers an upgrade with a status line and then one header that never ends (issue 24, finding 6)."""

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: ")
            with contextlib.suppress(OSError):
                for _ in range(200):  # 200 x 1 KiB: past the client's 64 KiB head cap, bounded
                    self.wfile.write(b"a" * 1024)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        assert not thread.is_alive()


def test_an_answer_past_the_clients_head_cap_is_fatal_and_names_host() -> None:
    with endless_header_server() as url:
        finding = check(url)
    assert finding is not None and finding.fatal, finding
    assert "more than the client reads" in finding.message and "check --host" in finding.message
