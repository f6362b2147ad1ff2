"""`python -m server.gateway` as a real process in front of a real reference server.

The rolling-restart drill (tests/reliability/test_rolling_restart.py) trusts the gateway to be
a transparent relay: what a client sees through it is what the state server said, and what the
client does reaches the state server. These tests prove that piece by piece, on 127.0.0.1 with
port 0, with the project's client (and a raw socket where a library would hide the frames):
welcome, echo and binary frames relayed; a refusal passed back as it came; close codes passed
both ways; resume passed on (and lost with the `--forget-resume` fault switch); a graceful
SIGTERM; one-line usage errors. Every child started here is stopped here, its exit status
checked, and its port checked closed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from client import HandshakeRejected, ProtocolClient
from common.child_process import ROOT, ChildProcess
from server.gateway import CLOSE_WAIT
from tests.support import rawws
from tests.support.rawws import OP_BINARY, OP_TEXT
from tests.support.server import ServerHandle, running_server

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 3.0
"""Every reply wait: short, so a gateway that relays nothing fails fast instead of hanging."""
GONE_TIMEOUT = 3.0
"""How long the state server may take to notice a relayed close; far below its heartbeat
(20 s by default), so only the gateway closing the upstream can make a connection go in time."""
READY = re.compile(r"^Socketproof gateway to (\S+) listening on ws://127\.0\.0\.1:(\d+)/ws$")
STOPPED = re.compile(
    r"^gateway stopped: served (\d+) connections, closed (\d+) at shutdown, "
    r"dropped (\d+) messages for closed clients in the (\S+)s drain$"
)


class GatewayProcess(ChildProcess):
    """`python -m server.gateway --port 0` as a child; `start()` returns once it listens."""

    ready_mark = "listening on ws://"

    def __init__(self, upstream: str, *options: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.options = options
        self.port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = START_TIMEOUT) -> str:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
        command = [sys.executable, "-m", "server.gateway", "--upstream", self.upstream,
                   "--host", "127.0.0.1", "--port", "0", *self.options]
        ready = self.launch(command, {**env, "PYTHONUNBUFFERED": "1"}, timeout)
        if ready is None:
            raise RuntimeError("gateway did not start:\n" + "".join(self.output))
        match = READY.match(ready.strip())
        assert match and match.group(1) == self.upstream, ready
        self.port = int(match.group(2))
        return self.ws_url


def port_refuses(port: int) -> bool:
    """True when nothing accepts TCP on 127.0.0.1:`port` any more."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


@contextlib.contextmanager
def running_gateway(upstream: str, *options: str) -> Iterator[GatewayProcess]:
    """A gateway child for the block; afterwards it must have exited 0 and closed its port."""
    child = GatewayProcess(upstream, *options)
    child.start()
    try:
        assert not port_refuses(child.port), "the ready line came before the port accepted"  # the probe can fail
        yield child
    finally:
        code = child.stop(STOP_TIMEOUT)
        assert code == 0, f"gateway exited with {code}:\n{''.join(child.output)}"
        assert port_refuses(child.port), f"port {child.port} still accepts after the gateway stopped"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    """One state server for the module (/echo on, for the binary case); stopped with exit 0."""
    with running_server(echo_endpoint="true") as handle:
        yield handle


@pytest.fixture(scope="module")
def gateway(server: ServerHandle) -> Iterator[GatewayProcess]:
    with running_gateway(server.ws_url) as child:
        yield child


@pytest.fixture
def clients(server: ServerHandle) -> Iterator[list[ProtocolClient]]:
    """Clients a test opens; all closed after it, and then none may be left on the state server."""
    opened: list[ProtocolClient] = []
    yield opened
    for client in opened:
        try:
            client.close()
        finally:
            client.drop()
    server.wait_stats(timeout=GONE_TIMEOUT, connections=0)


def new_client(clients: list[ProtocolClient], url: str, token: str) -> ProtocolClient:
    client = ProtocolClient(url, token=token, timeout=CLIENT_TIMEOUT)
    clients.append(client)
    return client


# -- 1. relaying -------------------------------------------------------------------------------


def test_welcome_and_echo_round_trip_through_the_gateway(
    server: ServerHandle, gateway: GatewayProcess, clients: list[ProtocolClient]
) -> None:
    """The state server's start-up frames and a text round trip come through unchanged, and the
    gateway holds exactly one upstream connection for its one client (a relay, not a server)."""
    client = new_client(clients, gateway.ws_url, server.token("gw-alice"))
    session = client.connect()
    assert session.welcome["user"] == "gw-alice" and session.welcome["resumed"] is False
    assert session.snapshot["type"] == "snapshot"
    data = {"x": [1, "é", None], "long": "y" * 5000}
    assert client.echo(data)["data"] == data
    assert server.wait_stats(timeout=GONE_TIMEOUT, connections=1)["connections"] == 1


def test_binary_and_text_frames_are_relayed_both_ways(server: ServerHandle) -> None:
    """Binary must stay binary (bytes that are not UTF-8 included) in both directions.

    The /ws protocol has no server-to-client binary frame (docs/protocol.md: a binary frame is
    `unsupported_frame`), so the binary path used is the reference server's own documented
    /echo endpoint (setting echo_endpoint), which sends text and binary frames back unchanged."""
    echo_url = server.ws_url[: -len("/ws")] + "/echo"
    payload = bytes(range(256)) * 4 + b"\xff\xfe"  # invalid UTF-8: a text relay would break it
    with running_gateway(echo_url) as gateway:
        with rawws.open_websocket(gateway.ws_url, server.token("gw-binary"), timeout=CLIENT_TIMEOUT) as ws:
            ws.send_frame(OP_BINARY, payload)
            assert ws.read_frame() == (OP_BINARY, payload)
            ws.send_frame(OP_TEXT, "héllo".encode())
            assert ws.read_frame() == (OP_TEXT, "héllo".encode())
            ws.send_close(1000)
            assert ws.frames_until_close(timeout=CLIENT_TIMEOUT) == ([], 1000)
            assert ws.eof_within(CLOSE_WAIT + 1), "the gateway kept TCP open after the close handshake"


# -- 2. refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "code"), [("not-a-jwt", "invalid_token"), (None, "token_expired")])
def test_a_refused_token_gets_the_same_answer_through_the_gateway(
    server: ServerHandle, gateway: GatewayProcess, token: str | None, code: str
) -> None:
    """The state server decides, the gateway passes its 401 and body back as they came."""
    token = token or server.token("gw-expired", ttl=-5)
    answers = []
    before = server.stats()["auth_failures"]
    for url in (server.ws_url, gateway.ws_url):
        with pytest.raises(HandshakeRejected) as refused:
            ProtocolClient(url, token=token, timeout=CLIENT_TIMEOUT).connect()
        answers.append((refused.value.status, refused.value.code, refused.value.message))
    assert answers[0] == answers[1] == (401, code, answers[0][2])
    assert server.stats()["auth_failures"] == before + 2, "the gateway refused by itself, or asked twice"


# -- 3. close codes ----------------------------------------------------------------------------


def test_a_client_close_reaches_the_state_server(
    server: ServerHandle, gateway: GatewayProcess, clients: list[ProtocolClient]
) -> None:
    """A clean 1000 from the client ends its upstream connection at once, not at a heartbeat."""
    client = new_client(clients, gateway.ws_url, server.token("gw-bye"))
    client.connect()
    server.wait_stats(timeout=GONE_TIMEOUT, connections=1)
    assert client.close(1000).code == 1000
    server.wait_stats(timeout=GONE_TIMEOUT, connections=0)


def test_a_state_server_close_code_reaches_the_client(
    server: ServerHandle, gateway: GatewayProcess, clients: list[ProtocolClient]
) -> None:
    """The state server closes an expired token's connection with 4001; the client must see
    4001 and its reason, not a gateway's own code."""
    client = new_client(clients, gateway.ws_url, server.token("gw-expiring", ttl=1.0))
    client.connect()
    closed = client.wait_closed(timeout=4.0)
    assert (closed.code, closed.reason) == (4001, "token expired")


# -- 4. resume ---------------------------------------------------------------------------------


def resume_through(server: ServerHandle, url: str, user: str, clients: list[ProtocolClient]) -> tuple[bool, list[int]]:
    """`user` gets message seq 1 live through `url`, closes, then connects again through `url`
    with last_seq=0; returns that welcome's `resumed` and the replayed seqs. Only a passed-on
    last_seq brings seq 1 back: without it the state server replays from what it delivered."""
    first = new_client(clients, url, server.token(user))
    first.connect()
    peer = new_client(clients, server.ws_url, server.token(user + "-peer"))
    peer.connect()
    assert peer.send(user, {"n": 1})["seq"] == 1
    pushed = first.next_push(CLIENT_TIMEOUT)
    assert (pushed["type"], pushed["seq"]) == ("message", 1)
    first.close()
    again = new_client(clients, url, server.token(user))
    session = again.connect(last_seq=0)
    return session.welcome["resumed"], [message["seq"] for message in session.replayed]


def test_resume_passes_through(server: ServerHandle, gateway: GatewayProcess, clients: list[ProtocolClient]) -> None:
    assert resume_through(server, gateway.ws_url, "gw-resume", clients) == (True, [1])


def test_forget_resume_loses_the_replay(server: ServerHandle, clients: list[ProtocolClient]) -> None:
    """The fault switch's own proof: the same resume through a `--forget-resume` gateway."""
    with running_gateway(server.ws_url, "--forget-resume") as faulty:
        assert resume_through(server, faulty.ws_url, "gw-forget", clients) == (False, [])
        for client in clients:  # before the gateway stops: its SIGTERM would wait out a drain for them
            client.close()
        assert any("fault switch ON" in line and "forget_resume" in line for line in faulty.output)


# -- 5. SIGTERM --------------------------------------------------------------------------------


def test_sigterm_closes_clients_with_1001_drains_and_exits_0(
    server: ServerHandle, clients: list[ProtocolClient]
) -> None:
    """Clients get 1001; a message reaching a closed client in the drain is dropped, counted and
    still replayable from the state server; the gateway exits 0 in time and its port closes."""
    drain = 1.0
    with running_gateway(server.ws_url, "--drain", str(drain)) as gateway:
        users = [new_client(clients, gateway.ws_url, server.token(f"gw-term-{n}")) for n in range(2)]
        for client in users:
            client.connect()
        peer = new_client(clients, server.ws_url, server.token("gw-term-peer"))
        peer.connect()
        server.wait_stats(timeout=GONE_TIMEOUT, connections=3)
        assert gateway.process is not None
        started = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        for client in users:
            closed = client.wait_closed(timeout=CLOSE_WAIT + 1)
            assert (closed.code, closed.reason) == (1001, "gateway shutting down")
        assert time.monotonic() - started < drain, "the clients were not closed before the drain"
        assert peer.send("gw-term-0", {"late": True})["queued"] is False  # its upstream is still open
        assert gateway.process.wait(drain + 2 * CLOSE_WAIT) == 0
        assert time.monotonic() - started >= drain, "the upstreams were not kept for the drain"
        stopped = [STOPPED.match(line.strip()) for line in gateway.output if line.startswith("gateway stopped:")]
        assert len(stopped) == 1 and stopped[0] is not None, gateway.output
        assert stopped[0].groups() == ("2", "2", "1", f"{drain:g}")
        assert port_refuses(gateway.port)
    server.wait_stats(timeout=GONE_TIMEOUT, connections=1)  # only the peer: every upstream is closed
    back = new_client(clients, server.ws_url, server.token("gw-term-0"))
    replayed = back.connect(last_seq=0).replayed
    assert [(message["seq"], message["data"]) for message in replayed] == [(1, {"late": True})]


# -- 6. usage errors ---------------------------------------------------------------------------


def run_gateway(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run to completion (only invocations that must exit by themselves)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    return subprocess.run([sys.executable, "-m", "server.gateway", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((), "--upstream"),
        (("--upstream", "http://127.0.0.1:8765/ws"), "'http://127.0.0.1:8765/ws'"),
        (("--upstream", "ws:///ws"), "'ws:///ws'"),
        (("--upstream", "ws://127.0.0.1:8765/ws", "--port", "abc"), "'abc'"),
        (("--upstream", "ws://127.0.0.1:8765/ws", "--port", "70000"), "70000"),
        (("--upstream", "ws://127.0.0.1:8765/ws", "--port", "-1"), "-1"),
    ],
    ids=["missing-upstream", "http-upstream", "no-host", "port-not-a-number", "port-too-big", "port-negative"],
)
def test_bad_cli_input_exits_2_with_one_error_line(args: tuple[str, ...], named: str) -> None:
    """A usage error is argparse's usage block plus one error line naming the bad input."""
    result = run_gateway(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "listening" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line and not line.startswith(("usage:", " "))]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("python -m server.gateway: error:") and named in errors[0]


def test_port_in_use_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_gateway("--upstream", "ws://127.0.0.1:8765/ws", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "cannot listen on 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
