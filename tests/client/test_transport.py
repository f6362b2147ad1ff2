"""client/transport.py on real sockets: the reference server, the `websockets`-library chat
server, and a scripted one-connection server (tests/client/support.py) for what no real
server sends (bad frames, exact close and pong bytes). Plain threads; every test checks
nothing was left open."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsproto.frame_protocol import Opcode

from client.errors import ConnectionClosed, HandshakeRejected, SocketproofError, Timeout
from client.tokens import mint_token
from client.transport import State, Transport
from tests.client.support import CHAT_PING_INTERVAL, Peer, ScriptedServer, unmasked
from tests.support.server import ServerHandle, running_server

pytestmark = pytest.mark.usefixtures("nothing_left_open")

HEARTBEAT = {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.3}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(**HEARTBEAT) as handle:
        yield handle


class Ends:
    """What a Transport reports: messages, the one close, ping times."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.closes: list[tuple[int | None, str, str]] = []
        self.pings: list[float] = []
        self.got_message = threading.Event()

    def message_received(self, frame: str | bytes, t_recv: float) -> None:
        assert isinstance(t_recv, float)
        self.messages.append(frame)
        self.got_message.set()

    def ping_received(self, t: float) -> None:
        self.pings.append(t)

    def connection_lost(self, code: int | None, reason: str, initiator: str) -> None:
        self.closes.append((code, reason, initiator))

    def transport(self, **kwargs: Any) -> Transport:
        return Transport(timeout=2.0, label="t-" + uuid.uuid4().hex[:6], listener=self, **kwargs)

    def wait_messages(self, count: int, timeout: float = 2.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(self.messages) >= count, self.messages
        return [json.loads(m) for m in self.messages]


def bearer(server: ServerHandle) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(server.secret, "u-" + uuid.uuid4().hex[:8])}


def chat_connections(chat_url: str) -> int:
    with urllib.request.urlopen(chat_url.replace("ws://", "http://") + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("chat_connections "):
                return int(float(line.split()[1]))
    raise AssertionError("no chat_connections in /metrics")


def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- open, close, drop ------------------------------------------------------------------------


def test_connect_and_close_against_the_reference_server(server: ServerHandle) -> None:
    ends = Ends()
    transport = ends.transport()
    assert transport.state is State.CLOSED
    response = transport.connect(server.ws_url, bearer(server))
    assert transport.state is State.OPEN
    assert response.status == 101 and response.headers["sec-websocket-accept"] and response.subprotocol is None
    welcome, snapshot = ends.wait_messages(2)
    assert (welcome["type"], snapshot["type"]) == ("welcome", "snapshot")
    with pytest.raises(SocketproofError, match="connect\\(\\) while open"):
        transport.connect(server.ws_url, bearer(server))
    transport.send('{"type":"echo","id":"1","data":"żółw"}')
    assert ends.wait_messages(3)[2]["data"] == "żółw"
    closed = transport.close(1000, "bye")
    assert (closed.code, transport.state) == (1000, State.CLOSED)
    assert ends.closes == [(1000, "bye", "client")]  # the server's answer, once
    assert transport.close() is closed and transport.wait_closed(0.1) is closed
    with pytest.raises(ConnectionClosed):
        transport.send("{}")
    server.wait_stats(connections=0)


def test_drop_ends_tcp_with_no_close_frame(server: ServerHandle) -> None:
    ends = Ends()
    transport = ends.transport()
    transport.connect(server.ws_url, bearer(server))
    ends.wait_messages(2)
    transport.drop()
    assert transport.state is State.CLOSED
    assert transport.wait_closed(0.1).code is None
    assert ends.closes == [(None, "", "abrupt")]
    transport.drop()  # twice: nothing more happens
    assert len(ends.closes) == 1
    with pytest.raises(ConnectionClosed):
        transport.send("{}")
    server.wait_stats(connections=0)  # the server saw TCP end


def test_connect_close_and_drop_against_the_websockets_library(chat_url: str) -> None:
    ends = Ends()
    transport = ends.transport()
    response = transport.connect(chat_url + "/chat", subprotocols=())
    assert response.status == 101
    transport.send(json.dumps({"op": "echo", "ref": 1, "body": "x" * 70000}))  # a 64-bit length each way
    assert ends.wait_messages(1)[0] == {"op": "echo", "ref": 1, "body": "x" * 70000}
    transport.send(b"\x00binary")  # a binary frame: the server answers it is not JSON
    assert ends.wait_messages(2)[1]["op"] == "error"
    wait_for(lambda: chat_connections(chat_url) == 1)
    assert transport.close().code == 1000
    assert ends.closes == [(1000, "", "client")]
    wait_for(lambda: chat_connections(chat_url) == 0)
    dropped = Ends()
    other = dropped.transport()
    other.connect(chat_url + "/chat")
    wait_for(lambda: chat_connections(chat_url) == 1)
    other.drop()
    assert dropped.closes == [(None, "", "abrupt")]
    wait_for(lambda: chat_connections(chat_url) == 0)


# -- pings ------------------------------------------------------------------------------------


def test_server_pings_are_answered_and_timed_and_silence_gets_closed(server: ServerHandle) -> None:
    ends = Ends()
    transport = ends.transport()
    transport.connect(server.ws_url, bearer(server))
    time.sleep(0.8)  # > interval + timeout: the server would close a silent client
    assert transport.state is State.OPEN
    assert len(transport.ping_times) >= 2 and list(transport.ping_times) == ends.pings
    assert list(transport.ping_times) == sorted(transport.ping_times)
    transport.answer_pings = False
    closed = transport.wait_closed(1.5)
    assert (closed.code, closed.reason) == (1008, "heartbeat timeout")
    assert ends.closes == [(1008, "heartbeat timeout", "server")]
    server.wait_stats(connections=0)


def test_the_websockets_library_keeps_an_answering_client_and_closes_a_silent_one(chat_url: str) -> None:
    ends = Ends()
    transport = ends.transport()
    transport.connect(chat_url + "/chat")
    time.sleep(CHAT_PING_INTERVAL * 6)  # past its ping timeout (4 intervals)
    assert transport.state is State.OPEN and len(transport.ping_times) >= 3
    transport.answer_pings = False
    closed = transport.wait_closed(CHAT_PING_INTERVAL * 10)
    assert closed.code == 1011 and "ping timeout" in closed.reason
    assert ends.closes[0][2] == "server"
    wait_for(lambda: chat_connections(chat_url) == 0)


# -- a scripted server: exact bytes each way -----------------------------------------------------


def test_a_server_initiated_close_is_echoed_with_its_code() -> None:
    def script(peer: Peer) -> Any:
        peer.send_close(4001, "done here")
        return peer.read(), peer.read()

    ends = Ends()
    with ScriptedServer(script) as scripted:
        transport = ends.transport()
        transport.connect(scripted.url)
        assert transport.wait_closed(2.0).code == 4001
    echo, after = scripted.result
    assert echo[0] is Opcode.CLOSE and int(echo[1][0]) == 4001  # the same code back (RFC 6455 5.5.1)
    assert after is None  # then TCP ends
    assert ends.closes == [(4001, "done here", "server")]


@pytest.mark.parametrize("answer", [True, False])
def test_a_ping_is_answered_with_its_payload_unless_told_not_to(answer: bool) -> None:
    def script(peer: Peer) -> Any:
        peer.conn.sendall(unmasked(0x9, b"beat-1"))
        peer.send_json({"after": "ping"})
        return peer.read()  # the pong, or the client's close frame when it sent none

    ends = Ends()
    with ScriptedServer(script) as scripted:
        transport = ends.transport()
        transport.answer_pings = answer
        transport.connect(scripted.url)
        assert ends.wait_messages(1) == [{"after": "ping"}]
        transport.close()
    expected = (Opcode.PONG, b"beat-1") if answer else Opcode.CLOSE
    assert (scripted.result if answer else scripted.result[0]) == expected
    assert len(transport.ping_times) == 1 and ends.pings == list(transport.ping_times)


def test_a_large_message_to_a_slow_reader_arrives_whole() -> None:
    """Far over the kernel's socket buffers: the sender waits for room instead of failing."""
    big = "x" * (8 * 1024 * 1024)

    def script(peer: Peer) -> Any:
        time.sleep(0.3)  # the client's buffer fills meanwhile
        parts: list[str] = []
        while sum(map(len, parts)) < len(big):  # wsproto hands a long frame over in pieces
            frame = peer.read()
            assert frame is not None and frame[0] is Opcode.TEXT
            parts.append(frame[1])
        return "".join(parts)

    ends = Ends()
    with ScriptedServer(script) as scripted:
        transport = ends.transport()
        transport.connect(scripted.url)
        transport.send(big)
        transport.drop()
    assert scripted.result == big


def test_a_send_to_a_peer_that_never_reads_times_out() -> None:
    stop = threading.Event()

    def script(peer: Peer) -> Any:
        stop.wait(5)  # reads nothing until the client gave up

    ends = Ends()
    with ScriptedServer(script) as scripted:
        transport = ends.transport()
        transport.timeout = 0.3
        transport.connect(scripted.url)
        started = time.monotonic()
        with pytest.raises(Timeout, match="send blocked"):
            for _ in range(64):  # 64 MB: far more than any socket buffer takes
                transport.send(b"y" * (1024 * 1024))
        assert time.monotonic() - started < 3.0
        stop.set()
        transport.drop()
    assert transport.state is State.CLOSED


@pytest.mark.parametrize(
    ("bad", "code"),
    [(unmasked(0x1, b"{}", first=0xC1), 1002),  # RSV1 with no extension
     (unmasked(0x3, b""), 1002),  # a reserved opcode
     (unmasked(0x1, b"\xc3\x28"), 1007),  # invalid UTF-8 in a text frame
     (unmasked(0x1, b"x" * 101), 1009)],  # over max_message_bytes
)
def test_a_bad_frame_closes_with_its_code_after_what_came_before(bad: bytes, code: int) -> None:
    def script(peer: Peer) -> Any:
        peer.conn.sendall(unmasked(0x1, b'{"n":1}') + bad)  # in one segment: the good one still counts
        return peer.read(), peer.read()

    ends = Ends()
    with ScriptedServer(script) as scripted:
        transport = ends.transport(max_message_bytes=100)
        transport.connect(scripted.url)
        closed = transport.wait_closed(2.0)
    assert closed.code == code and ends.closes[0][:1] == (code,) and ends.closes[0][2] == "client"
    assert ends.messages == ['{"n":1}']
    close_frame, after = scripted.result
    assert close_frame[0] is Opcode.CLOSE and int(close_frame[1][0]) == code
    assert after is None


def test_a_message_over_max_message_bytes_from_the_reference_server_is_1009(server: ServerHandle) -> None:
    ends = Ends()
    transport = ends.transport(max_message_bytes=1000)  # the welcome fits
    transport.connect(server.ws_url, bearer(server))
    ends.wait_messages(2)
    transport.send(json.dumps({"type": "echo", "id": "big", "data": "y" * 1000}))
    closed = transport.wait_closed(2.0)
    assert closed.code == 1009 and "over the limit of 1000" in closed.reason
    assert ends.closes == [(1009, closed.reason, "client")]
    server.wait_stats(connections=0)


def test_the_chosen_subprotocol_is_one_offered() -> None:
    with ScriptedServer(lambda peer: peer.read()) as scripted:
        transport = Ends().transport()
        response = transport.connect(scripted.url, subprotocols=("chat.v2", "chat.v1"))
        assert response.subprotocol == "chat.v2"
        transport.close()
    assert "Sec-WebSocket-Protocol: chat.v2, chat.v1\r\n" in scripted.request_head
    assert "Origin:" not in scripted.request_head  # none unless asked


@pytest.mark.parametrize("offered", [("chat.v1",), ()])
def test_a_subprotocol_not_offered_is_refused(offered: tuple[str, ...]) -> None:
    with ScriptedServer(lambda peer: peer.read(), subprotocol="other") as scripted:
        transport = Ends().transport()
        with pytest.raises(HandshakeRejected) as caught:
            transport.connect(scripted.url, subprotocols=offered)
    assert (caught.value.status, caught.value.code) == (101, "bad_subprotocol")
    assert "'other'" in str(caught.value)
    assert transport.state is State.CLOSED
    assert scripted.result is None  # the client ended TCP


# -- failing to open ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "missing_token"), ({"Authorization": "Bearer garbage"}, 401, "invalid_token")],
)
def test_a_refused_handshake_is_handshake_rejected(server: ServerHandle, headers: dict[str, str], status: int,
                                                   code: str) -> None:
    ends = Ends()
    transport = ends.transport()
    with pytest.raises(HandshakeRejected) as caught:
        transport.connect(server.ws_url, headers)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert transport.state is State.CLOSED and ends.closes == []
    with pytest.raises(ConnectionClosed):
        transport.send("{}")


def test_a_plain_http_answer_is_not_websocket(chat_url: str) -> None:
    transport = Ends().transport()
    with pytest.raises(HandshakeRejected) as caught:
        transport.connect(chat_url + "/metrics")
    assert caught.value.code == "not_websocket"
    assert transport.state is State.CLOSED


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = Ends().transport()
    with pytest.raises(HandshakeRejected) as caught:
        transport.connect(f"ws://127.0.0.1:{port}/ws")
    assert (caught.value.status, caught.value.code) == (0, "unreachable")
    assert transport.state is State.CLOSED


def test_a_server_that_never_answers_the_upgrade_is_a_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (backlog), says nothing
        transport = Transport(timeout=0.3, label="silent", listener=Ends())
        t0 = time.monotonic()
        with pytest.raises(Timeout):
            transport.connect(f"ws://127.0.0.1:{silent.getsockname()[1]}/ws")
        assert time.monotonic() - t0 < 2.0
        assert transport.state is State.CLOSED
