"""`python -m server`: help, start-up errors that name the setting, the ready line, fault warnings."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from server.process import ROOT, ServerProcess
from tests.support.server import running_server

READY = re.compile(r"^Socketproof reference server listening on ws://127\.0\.0\.1:(\d+)/ws$")


def run_server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (only for invocations that must exit by themselves)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    return subprocess.run(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=15,
    )


def test_help_exits_0() -> None:
    result = run_server("--help")
    assert result.returncode == 0
    assert "--set" in result.stdout and "queue_size" in result.stdout and "SOCKETPROOF_" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ((), {"SOCKETPROOF_QUEUE_SIZE": "abc"}, "queue_size"),
        (("--set", "queue_size=abc"), {}, "queue_size"),
        (("--set", "heartbeat_timeout=-1"), {}, "heartbeat_timeout"),
        ((), {"SOCKETPROOF_FAULTS": "explode"}, "faults"),
        (("--set", "faults=drop=7"), {}, "faults"),
        (("--set", "queue_sise=3"), {}, "queue_sise"),
    ],
    ids=[
        "env-queue-size",
        "set-queue-size",
        "set-heartbeat-timeout",
        "unknown-fault",
        "bad-probability",
        "unknown-setting",
    ],
)
def test_bad_setting_exits_2_with_one_line_naming_it(args: tuple[str, ...], env: dict[str, str], named: str) -> None:
    result = run_server(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"'{named}'" in lines[0] and lines[0].startswith("python -m server: error:")
    assert "Traceback" not in result.stderr and "listening" not in result.stdout


def test_explicit_set_wins_over_environment() -> None:
    result = run_server("--set", "queue_size=abc", env={"SOCKETPROOF_QUEUE_SIZE": "5"})
    assert result.returncode == 2 and "queue_size" in result.stderr
    result = run_server("--set", "queue_size=5", "--help", env={"SOCKETPROOF_QUEUE_SIZE": "abc"})
    assert result.returncode == 0


def test_set_without_value_is_a_usage_error() -> None:
    result = run_server("--set", "queue_size")
    assert result.returncode == 2
    assert "NAME=VALUE" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    result = run_server("--port", port)
    assert result.returncode == 2
    assert "--port must be between 0 and 65535" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clean = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
        result = subprocess.run(
            [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=clean,
            capture_output=True,
            text=True,
            timeout=15,
        )
    assert result.returncode == 2
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


def test_port_0_prints_the_url_line_and_no_warning_without_faults() -> None:
    with running_server() as handle:
        ready = [line.strip() for line in handle.output if "listening" in line]
        match = READY.match(ready[0])
        assert match and int(match.group(1)) > 0
        assert handle.ws_url.endswith(f":{match.group(1)}/ws")
        assert handle.get("/healthz") == (200, {"status": "ok"})
        assert not any("WARNING" in line for line in handle.output)


def test_a_warning_is_logged_when_a_fault_is_on() -> None:
    with running_server(faults="drop=0.1,stale_snapshot") as handle:
        warnings = [line for line in handle.output if "WARNING" in line]
        assert len(warnings) == 1
        assert "fault switches ON" in warnings[0] and "drop=0.1" in warnings[0] and "stale_snapshot" in warnings[0]
        assert handle.stats()["faults"] == {"drop": 0.1, "stale_snapshot": True}


def test_sigint_stops_the_server_with_status_0() -> None:
    child = ServerProcess()
    child.start()
    try:
        assert child.process is not None
        child.process.send_signal(signal.SIGINT)
        assert child.process.wait(10) == 0
    finally:
        child.kill()
