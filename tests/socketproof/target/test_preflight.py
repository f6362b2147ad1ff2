"""socketproof.target.preflight: one real connection through the run's adapter, against real targets:
the reference server, a wrong secret, a port with nothing listening, a TCP listener that
never answers, a WebSocket server speaking another protocol, and a plain HTTP server.
(The wording of each rejection is tested in tests/user/test_messages.py.)

Then the operations the flows use, tried once on real servers: a Socket.IO app without an
`echo` event, with its join event named otherwise, or broadcasting another event is one line
naming the adapter's option for it; the reference server, the GraphQL app and the Django
Channels chat (room in the URL) pass, in a few milliseconds."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator

import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
import pytest

from apps import graphql_app, socketio_app
from apps.channels_chat import running_app as channels_chat
from apps.json_chat_server import chat_server
from client.adapters import AdapterSettings
from client.adapters.graphql_ws import GraphQLWSAdapter
from client.adapters.socketio import SocketIOAdapter
from client.errors import ProtocolError, SocketproofError
from locustfiles.chat import ChatUser
from locustfiles.idle import IdleUser
from locustfiles.reconnect import ReconnectUser
from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import LoadOptions
from socketproof.target import preflight
from tests.socketproof.test_bound_channel_runs import ADAPTER as CHANNELS_CHAT
from tests.socketproof.test_custom_adapter_runs import ADAPTER as JSON_CHAT
from tests.socketproof.verdicts.test_server_count import free_port
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


# -- the operations the flows use, tried once ---------------------------------------

HEALTHY = 1.0
"""Seconds the whole pre-flight may take on a healthy loopback server, operations included
(measured: 5 ms on the reference server, 50 ms on the Socket.IO and GraphQL apps)."""


def timed(host: str, options: LoadOptions, adapter: object, **kwargs: object) -> tuple[preflight.Finding | None, float]:
    started = time.monotonic()
    finding = preflight.check(host, options, adapter=adapter, **kwargs)
    return finding, time.monotonic() - started


def socketio(app: socketio_app.AppHandle, **values: str) -> tuple[LoadOptions, SocketIOAdapter]:
    return LoadOptions(jwt_secret=app.secret), SocketIOAdapter(AdapterSettings(values))


def test_the_reference_server_does_each_operation_in_milliseconds() -> None:
    with running_server() as server:
        options = LoadOptions(jwt_secret=server.secret)
        finding, seconds = timed(server.ws_url, options, build_run_adapter(None, options))
        server.wait_stats(connections=0)  # the second connection (the publish's receiver) closed too
    assert finding is None and seconds < HEALTHY, (finding, seconds)


def test_a_socketio_app_without_echo_is_one_line_naming_the_echo_option() -> None:
    """The official Node socket.io examples have no `echo` event: every echo of the run would time out."""
    with socketio_app.running_app(no_echo=True) as app:
        finding, seconds = timed(app.url, *socketio(app))
        cleared, quick = timed(app.url, *socketio(app, socketio_echo_event=""))
    assert finding is not None and finding.fatal, finding
    assert finding.message == (
        f"{app.url}/socket.io/?EIO=4&transport=websocket: no answer to the pre-flight's echo within 3s: check "
        "--socketio-echo-event (the event your server answers with an ack; '' to measure with publishes instead)")
    assert preflight.OPERATION_TIMEOUT <= seconds < preflight.OPERATION_TIMEOUT + 2.0, seconds
    assert cleared is None and quick < HEALTHY, (cleared, quick)


def test_a_socketio_join_event_named_otherwise_names_the_join_option() -> None:
    with socketio_app.running_app(join_event="enter") as app:
        finding, _ = timed(app.url, *socketio(app))
        fixed, _ = timed(app.url, *socketio(app, socketio_join_event="enter"))
    assert finding is not None and finding.fatal and "\n" not in finding.message, finding
    assert finding.message.startswith(f"{app.url}/socket.io/?EIO=4&transport=websocket: no answer to joining room "
                                      "'socketproof-preflight-"), finding.message
    assert finding.message.endswith(": check --socketio-join-event (the event your server joins a room on, "
                                    "with an ack; arg: the room)"), finding.message
    assert fixed is None


def test_a_publish_event_the_app_does_not_have_names_the_publish_option() -> None:
    with socketio_app.running_app() as app:
        finding, _ = timed(app.url, *socketio(app, socketio_event="chat message"))
    assert finding is not None and finding.fatal, finding
    assert "no answer to a publish to 'socketproof-preflight-" in finding.message
    assert finding.message.endswith(": check --socketio-event (the event your server acks and broadcasts to "
                                    "the room, body {room, body})"), finding.message


def test_only_what_the_mix_uses_is_tried() -> None:
    """A mix without the chat flow never echoes: an app without `echo` is fine for it."""
    assert preflight.operations_used([ChatUser, IdleUser]) == {"echo", "subscribe", "publish"}
    assert preflight.operations_used([IdleUser, ReconnectUser]) == {"subscribe", "publish"}
    assert preflight.operations_used([IdleUser]) == {"subscribe"}
    with socketio_app.running_app(no_echo=True, join_event="enter") as app:
        without_echo, _ = timed(app.url, *socketio(app, socketio_join_event="enter"),
                                uses=preflight.operations_used([IdleUser, ReconnectUser]))
        listen_only, _ = timed(app.url, *socketio(app, socketio_event="tick", socketio_join_event="enter"),
                               uses=preflight.operations_used([IdleUser]))
    assert without_echo is None and listen_only is None, (without_echo, listen_only)


def test_the_graphql_app_passes_and_a_query_it_lacks_names_graphql_echo() -> None:
    secret = graphql_app.DEFAULT_SECRET
    echo = "query($message: String!) { echo(message: $message) }"
    with graphql_app.running_app(secret) as app:
        options = LoadOptions(jwt_secret=secret)
        plain, seconds = timed(app.url, options, GraphQLWSAdapter(AdapterSettings()))
        echoed, _ = timed(app.url, options, GraphQLWSAdapter(AdapterSettings({"graphql_echo": echo})))
        wrong, _ = timed(app.url, options, GraphQLWSAdapter(AdapterSettings({"graphql_echo": echo.replace(
            "echo(", "ping(")})))
        mutation = "mutation($channel: String!, $stamp: String!) { post(room: $channel, body: $stamp) { body } }"
        no_publish, _ = timed(app.url, options, GraphQLWSAdapter(AdapterSettings({"graphql_publish": mutation})))
    assert plain is None and echoed is None and seconds < HEALTHY, (plain, echoed, seconds)
    assert wrong is not None and wrong.fatal and wrong.message == (
        f"{app.url}/graphql: the server refused the pre-flight's echo (graphql_error: Cannot query field 'ping' "
        "on type 'Query'.): check --graphql-echo (a query your schema answers, with $message)"), wrong
    assert no_publish is not None and no_publish.fatal and "the server refused a publish to 'socketproof-pre" in \
        no_publish.message and no_publish.message.endswith("check --graphql-subscription / --graphql-publish "
                                                           "(the subscription a publish mutation must reach)")


def test_a_room_in_the_url_gets_two_connections_to_the_same_room() -> None:
    """BOUND_CHANNEL (the Django Channels tutorial): the publish must come back in the room both
    pre-flight connections were opened for."""

    class Origin:  # what --origin does (socketproof/target/deployment.py)
        publisher = None

        def __init__(self, origin: str) -> None:
            self.origin = origin

        def token(self, identity: str, ttl: float) -> None:
            return None

        def apply(self, client: object, token: object) -> None:
            client.origin = self.origin  # type: ignore[attr-defined]

    options = LoadOptions(protocol=CHANNELS_CHAT)
    with channels_chat() as app:
        finding, seconds = timed(app.url.replace("http://", "ws://"), options, build_run_adapter(None, options),
                                 deployment=Origin(app.url))
    assert finding is None and seconds < HEALTHY, (finding, seconds)


def test_an_adapter_without_an_option_for_it_asks_about_the_protocol() -> None:
    with chat_server() as url:
        options = LoadOptions(protocol=JSON_CHAT)
        adapter = build_run_adapter(None, options)
        assert preflight.check(url, options, adapter=adapter) is None  # it does all three
    tryout = preflight.Tryout(url, url, adapter, options, "r", None, QUICK)
    assert adapter.fix_for("echo") is None
    assert tryout.missing("echo", "x") == "x: is the server speaking the json-chat protocol? (check --protocol)"
