"""The relay over real sockets: exact with no fault, and each fault visible at the peers.

A wsproto echo server (peers.FrameServer) behind a FaultProxy on 127.0.0.1 port 0, and a
wsproto client in front: what one side sent is compared frame by frame with what the other
received (fragments, pings between fragments, binary, close codes both ways, subprotocol,
headers, permessage-deflate passed through or stripped).
"""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from socketproof.proxy import FaultProxy
from tests.socketproof.proxy.peers import FrameClient, FrameServer, wait_until


@pytest.fixture
def server() -> Iterator[FrameServer]:
    with FrameServer() as frame_server:
        yield frame_server


def proxied(server: FrameServer, spec: str = "", seed: int | None = 7) -> FaultProxy:
    return FaultProxy(server.url, spec, seed=seed)


def finish(proxy: FaultProxy, *clients: FrameClient) -> None:
    """Close the clients, see the proxy drop their relays, stop it."""
    for client in clients:
        client.close()
    wait_until(lambda: proxy.connections == 0)
    proxy.stop()


def test_fragments_pings_binary_and_a_client_close_pass_exactly(server: FrameServer) -> None:
    with proxied(server) as proxy:
        client = FrameClient(proxy.url)
        client.send(TextMessage("héllo ", message_finished=False))
        client.send(Ping(b"in-between"))
        client.send(TextMessage("wörld", message_finished=True))
        client.send(BytesMessage(bytes(range(256)) * 300))
        client.send(TextMessage(""))
        sent = [("text", "héllo ", False), ("ping", b"in-between"), ("text", "wörld", True),
                ("binary", bytes(range(256)) * 300, True), ("text", "", True)]
        assert server.connections[0].wait_for(5) == sent
        echoed = client.recorder.wait_for(5)
        assert echoed == [("text", "héllo ", False), ("pong", b"in-between"), ("text", "wörld", True),
                          ("binary", bytes(range(256)) * 300, True), ("text", "", True)]
        client.send(CloseConnection(4000, "client says bye"))
        assert server.connections[0].wait_for(6)[-1] == ("close", 4000, "client says bye")
        assert client.recorder.wait_for(6)[-1] == ("close", 4000, "client says bye")
        assert client.ended.wait(5), "the proxy did not end the TCP connection after the close handshake"
        counts = proxy.counts()
        finish(proxy, client)
    assert counts["faults"] == {}
    assert counts["relayed"]["up:frames"] == 4 and counts["relayed"]["up:messages"] == 3


def test_server_pings_fragments_and_a_server_close_pass_exactly(server: FrameServer) -> None:
    with proxied(server) as proxy:
        client = FrameClient(proxy.url)
        client.send(TextMessage("cmd:ping:heartbeat"))
        client.send(TextMessage("cmd:fragping"))
        records = client.recorder.wait_for(6)
        assert records == [("text", "cmd:ping:heartbeat", True), ("ping", b"heartbeat"),
                           ("text", "cmd:fragping", True), ("text", "frag-one ", False), ("ping", b"between"),
                           ("text", "frag-two", True)]
        wait_until(lambda: server.connections[0].records.count(("pong", b"heartbeat")) == 1)
        client.send(TextMessage("cmd:close:4321:server says bye"))
        assert client.recorder.wait_for(8)[-1] == ("close", 4321, "server says bye")
        wait_until(lambda: server.connections[0].records[-1][0] == "close")
        assert server.connections[0].records[-1] == ("close", 4321, "server says bye")
        assert client.ended.wait(5)
        finish(proxy, client)


def test_subprotocol_and_headers_pass_both_ways(server: FrameServer) -> None:
    with proxied(server) as proxy:
        client = FrameClient(proxy.url, path="/some/path?x=1", subprotocols=("chat.v2", "chat.v1"),
                             headers=((b"authorization", b"Bearer abc"), (b"x-custom", b"kept")))
        request = server.requests[0]
        assert request.target == "/some/path?x=1"
        assert request.subprotocols == ["chat.v2", "chat.v1"]
        headers = dict(request.extra_headers)
        assert headers[b"authorization"] == b"Bearer abc" and headers[b"x-custom"] == b"kept"
        assert client.accepted is not None and client.accepted.subprotocol == "chat.v2"
        assert client.header(b"x-test-server") == b"frames"
        finish(proxy, client)


@pytest.mark.parametrize(("spec", "negotiated"), [("", True), ("freeze_pings", True), ("drop=0", False)])
def test_permessage_deflate_passes_unless_a_data_fault_is_on(spec: str, negotiated: bool) -> None:
    with FrameServer(deflate=True) as server, proxied(server, spec) as proxy:
        client = FrameClient(proxy.url, deflate=True)
        offers = [str(offer) for offer in server.requests[0].extensions]
        assert bool(offers) is negotiated, offers
        assert client.accepted is not None
        assert [extension.name for extension in client.accepted.extensions] == (
            ["permessage-deflate"] if negotiated else [])
        text = "compressible " * 2000
        client.send(TextMessage(text))
        client.send(BytesMessage(b"\x00\xff" * 5000))
        assert client.recorder.wait_for(2) == [("text", text, True), ("binary", b"\x00\xff" * 5000, True)]
        finish(proxy, client)


def test_a_bad_frame_from_the_client_is_closed_with_1002_and_the_server_told() -> None:
    with FrameServer() as server, proxied(server) as proxy:
        client = FrameClient(proxy.url)
        client.sock.sendall(b"\x81\x05hello")  # an unmasked frame from a client breaks RFC 6455
        assert client.recorder.wait_for(1)[0][:2] == ("close", 1002)
        assert server.connections[0].wait_for(1)[0][:2] == ("close", 1002)
        assert client.ended.wait(5)
        finish(proxy, client)


def test_plain_http_is_relayed_as_bytes() -> None:
    import http.server
    import threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b'{"path": "' + self.path.encode() + b'"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with FaultProxy(f"ws://127.0.0.1:{httpd.server_address[1]}", "drop=1") as proxy:
            http_url = proxy.url.replace("ws://", "http://")
            with urllib.request.urlopen(http_url + "/stats", timeout=5) as response:
                assert response.read() == b'{"path": "/stats"}'
            wait_until(lambda: proxy.connections == 0)
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------------------------------------ faults at the peers


def send_numbered(client: FrameClient, count: int) -> None:
    for number in range(count):
        client.send(TextMessage(f"m{number}"))


def texts(records: list[tuple]) -> list[str]:
    return [record[1] for record in records if record[0] == "text"]


def test_drop_loses_exactly_the_counted_messages(server: FrameServer) -> None:
    with proxied(server, "up:drop=0.3") as proxy:
        client = FrameClient(proxy.url)
        send_numbered(client, 100)
        client.send(TextMessage("end"))
        wait_until(lambda: "end" in texts(server.connections[0].records))
        received = texts(server.connections[0].records)
        counts = proxy.counts()
        finish(proxy, client)
    dropped = counts["faults"]["up:drop"]
    assert 10 <= dropped <= 50 and len(received) == 101 - dropped
    assert received == sorted(received[:-1], key=lambda text: int(text[1:])) + ["end"]  # order kept


def echoed_numbers(server: FrameServer, spec: str) -> tuple[list[int], dict[str, int]]:
    """Send m0..m99 through a proxy with `spec`; the numbers the client got back, and the counts."""
    with proxied(server, spec) as proxy:
        client = FrameClient(proxy.url)
        send_numbered(client, 100)
        wait_until(lambda: len(server.connections[0].records) == 100)
        assert texts(server.connections[0].records) == [f"m{n}" for n in range(100)]  # up untouched
        # every original and every counted duplicate arrived (a held message is released within 1 s)
        wait_until(lambda: len(client.recorder.records) == 100 + proxy.counts()["faults"].get("down:duplicate", 0))
        counts = proxy.counts()["faults"]
        got = texts(client.recorder.records)
        finish(proxy, client)
    return [int(text[1:]) for text in got], counts


def test_duplicate_downstream(server: FrameServer) -> None:
    numbers, counts = echoed_numbers(server, "down:duplicate=0.2")
    assert len(numbers) - len(set(numbers)) == counts["down:duplicate"] > 0
    assert sorted(set(numbers)) == numbers[:1] + sorted(set(numbers))[1:] and set(numbers) == set(range(100))


def test_reorder_downstream(server: FrameServer) -> None:
    numbers, counts = echoed_numbers(server, "down:reorder=0.2")
    swaps = sum(1 for a, b in zip(numbers, numbers[1:], strict=False) if b < a)
    assert swaps == counts["down:reorder"] > 0 and sorted(numbers) == list(range(100))


def test_delay_holds_messages_in_order(server: FrameServer) -> None:
    with proxied(server, "down:delay_ms=150+20") as proxy:
        client = FrameClient(proxy.url)
        started = time.monotonic()
        client.send(TextMessage("slow"))
        client.recorder.wait_for(1)
        assert time.monotonic() - started >= 0.12
        finish(proxy, client)


def test_corrupt_keeps_text_valid_utf8(server: FrameServer) -> None:
    with proxied(server, "down:corrupt=1") as proxy:
        client = FrameClient(proxy.url)
        client.send(TextMessage("ünïcode stays valid"))
        record = client.recorder.wait_for(1)[0]
        assert record[0] == "text" and record[1] != "ünïcode stays valid" and len(record[1]) == 19
        finish(proxy, client)


def test_corrupt_raw_can_break_utf8_and_the_client_closes_1007(server: FrameServer) -> None:
    with proxied(server, "down:corrupt=1+raw", seed=3) as proxy:
        client = FrameClient(proxy.url)
        client.send(TextMessage("é" * 50))  # a flipped bit in a 2-byte sequence breaks it
        assert client.recorder.wait_for(1)[0][:2] == ("close", 1007)  # the client refused it
        finish(proxy, client)
    assert proxy.counts()["faults"] == {"down:corrupt": 1}


def test_freeze_pings_swallows_pings_and_pongs(server: FrameServer) -> None:
    with proxied(server, "freeze_pings") as proxy:
        client = FrameClient(proxy.url)
        client.send(Ping(b"hello?"))
        client.send(TextMessage("cmd:ping:beat"))
        client.send(TextMessage("after"))
        assert client.recorder.wait_for(2) == [("text", "cmd:ping:beat", True), ("text", "after", True)]
        assert server.connections[0].wait_for(2) == [("text", "cmd:ping:beat", True), ("text", "after", True)]
        counts = proxy.counts()
        finish(proxy, client)
    assert counts["faults"] == {"up:freeze_pings": 1, "down:freeze_pings": 1}


def test_cut_after_frames_ends_both_sides_without_a_close(server: FrameServer) -> None:
    with proxied(server, "up:cut_after=3") as proxy:
        client = FrameClient(proxy.url)
        send_numbered(client, 5)
        assert client.ended.wait(5)
        assert [record for record in client.recorder.records if record[0] == "close"] == [("close", 1006, "")]
        wait_until(lambda: proxy.connections == 0)
        assert texts(server.connections[0].records)[:3] == ["m0", "m1", "m2"]
        counts = proxy.counts()
        finish(proxy, client)
    assert counts["faults"] == {"up:cut_after": 1}


def test_cut_after_seconds(server: FrameServer) -> None:
    with proxied(server, "cut_after=0.3s") as proxy:
        started = time.monotonic()  # before the connection: the cut's clock starts when the proxy accepts it
        client = FrameClient(proxy.url)
        assert client.ended.wait(10)
        assert 0.25 <= time.monotonic() - started < 10
        finish(proxy, client)


def test_half_open_forwards_nothing_and_closes_nothing(server: FrameServer) -> None:
    with proxied(server, "half_open=0.4s") as proxy:
        client = FrameClient(proxy.url)
        send_numbered(client, 2)
        assert texts(client.recorder.wait_for(2)) == ["m0", "m1"]
        time.sleep(0.6)
        client.send(TextMessage("lost up"))
        client.send(TextMessage("cmd:ping:lost-down"))
        time.sleep(0.5)
        assert texts(server.connections[0].records) == ["m0", "m1"]
        assert texts(client.recorder.records) == ["m0", "m1"]
        assert not client.ended.is_set() and proxy.connections == 1
        counts = proxy.counts()
        client.close()
        time.sleep(0.2)
        assert proxy.connections == 1  # the server's leg stays open: it is told nothing
        proxy.stop()
    assert counts["faults"] == {"both:half_open": 1}


def test_throttle_paces_bytes(server: FrameServer) -> None:
    with proxied(server, "down:throttle=20000") as proxy:
        client = FrameClient(proxy.url)
        started = time.monotonic()
        for _ in range(5):
            client.send(BytesMessage(b"x" * 4000))
        client.recorder.wait_for(5)
        assert time.monotonic() - started >= 0.7  # 20 kB at 20 kB/s, the first 4 kB free
        finish(proxy, client)


def test_seeded_runs_inject_the_same_faults(server: FrameServer) -> None:
    outcomes = []
    for _ in range(2):
        with proxied(server, "up:drop=0.5", seed=42) as proxy:
            client = FrameClient(proxy.url)
            send_numbered(client, 30)
            client.send(TextMessage("end"))
            wait_until(lambda: "end" in texts(server.connections[-1].records))
            outcomes.append(texts(server.connections[-1].records))
            finish(proxy, client)
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) < 31


def test_stop_ends_live_connections_and_leaves_nothing(server: FrameServer) -> None:
    proxy = proxied(server)
    proxy.start()
    client = FrameClient(proxy.url)
    client.send(TextMessage("x"))
    client.recorder.wait_for(1)
    proxy.stop()
    assert client.ended.wait(5)
    assert not proxy.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=1).close()
    client.close()
