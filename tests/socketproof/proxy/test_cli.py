"""`python -m socketproof.proxy` as a user runs it: its URL line, its counts at the end, exit 2 on bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from wsproto.events import TextMessage

from socketproof.proxy import ProxyProcess
from socketproof.proxy.faults import FAULTS
from tests.socketproof.proxy.peers import FrameClient, FrameServer

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "socketproof.proxy", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_prints_its_url_relays_and_prints_the_counts_at_sigterm() -> None:
    with FrameServer() as server:
        proxy = ProxyProcess(server.url, "down:duplicate=1", seed=1)
        url = proxy.start()
        assert url.startswith("ws://127.0.0.1:")
        client = FrameClient(url)
        client.send(TextMessage("twice"))
        assert client.recorder.wait_for(2) == [("text", "twice", True)] * 2
        client.close()
        counts = proxy.stop()
    assert proxy.process is not None and proxy.process.returncode == 0
    assert counts is not None and counts["faults"] == {"down:duplicate": 1} and counts["seed"] == 1
    output = "".join(proxy.output)
    assert f"proxy listening on {url} -> {server.url} (faults: down:duplicate=1)" in output
    assert "proxy faults (down:duplicate=1): down:duplicate=1; relayed 1 connections, 1 messages up, 1 down" in output
    assert "permessage-deflate: removed from the negotiation" in output


def test_duration_ends_it_by_itself(tmp_path: Path) -> None:
    with FrameServer() as server:
        result = run_cli("--upstream", server.url, "--duration", "0.5", "--counts-file", str(tmp_path / "c.json"))
    assert result.returncode == 0, result.stderr
    assert "proxy faults (none): nothing injected; relayed 0 connections" in result.stdout
    assert json.loads((tmp_path / "c.json").read_text())["connections"] == 0


def test_sigint_stops_it_too() -> None:
    with FrameServer() as server:
        process = subprocess.Popen([sys.executable, "-m", "socketproof.proxy", "--upstream", server.url], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert process.stdout is not None and "proxy listening on" in process.stdout.readline()
            process.send_signal(signal.SIGINT)
            assert process.wait(10) == 0
            assert "proxy faults (none)" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: --upstream"),
        (("--upstream", "ws://127.0.0.1:1", "--faults", "drop=2"), "probability in 'drop=2' must be between 0 and 1"),
        (("--upstream", "ws://127.0.0.1:1", "--faults", "lag=5"), "unknown fault 'lag' in 'lag=5'"),
        (("--upstream", "wss://127.0.0.1:1"), "upstream must be a ws://host:port URL (wss is not supported)"),
        (("--upstream", "ws://127.0.0.1:1/ws"), "upstream must be ws://host:port with no path"),
        (("--upstream", "ws://127.0.0.1"), "upstream must name a host and a port"),
        (("--upstream", "ws://127.0.0.1:1", "--listen", "0.0.0.0:0"), "--listen must be a loopback address"),
        (("--upstream", "ws://127.0.0.1:1", "--listen", "nope"), "--listen must be HOST:PORT on loopback"),
        (("--upstream", "ws://127.0.0.1:1", "--seed", "x"), "argument --seed: invalid int value: 'x'"),
        (("--upstream", "ws://127.0.0.1:1", "--duration", "-1"), "--duration must be between 0 and 604800"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("socketproof.proxy: error: ")
    assert message in result.stderr


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "--faults" in result.stdout and "down:reorder=0.2" in result.stdout
    for fault in FAULTS.known():  # the fault list comes from the registry
        assert f"\n  {fault.usage}\n" in result.stdout


def test_a_listen_port_in_use_is_one_line_and_exit_2() -> None:
    with FrameServer() as server:
        port = server.server.server_address[1]
        result = run_cli("--upstream", server.url, "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 2 and result.stderr.startswith("socketproof.proxy: error: cannot listen on")
