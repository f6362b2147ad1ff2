"""Transparency: the ten core tests give the same outcomes through the proxy (no faults) as directly.

A reference server (short heartbeat and queue TTL, so the tests that need them run too), the
proxy as a child process in front of it, and the core tests run twice in a pytest subprocess
with SOCKETPROOF_TARGET_URL: once at the server, once at the proxy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from socketproof.proxy import ProxyProcess
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parents[3]
SECRET = "transparency-secret-0123456789abcdef"
SETTINGS = {"jwt_secret": SECRET, "heartbeat_interval": 1.0, "heartbeat_timeout": 1.0, "queue_ttl": 2.0}


def core_outcomes(target: str, tmp_path: Path) -> dict[str, str]:
    """nodeid -> PASSED/FAILED/SKIPPED/ERROR for tests/unified/websocket against `target`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    env.update({"SOCKETPROOF_TARGET_URL": target, "SOCKETPROOF_JWT_SECRET": SECRET,
                "SOCKETPROOF_METRICS_OUT": str(tmp_path / "core-metrics.json")})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests/unified/websocket"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    outcomes = dict(
        (match.group(2), match.group(1))
        for match in re.finditer(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+)", result.stdout, re.MULTILINE)
    )
    assert outcomes, result.stdout[-3000:] + result.stderr[-3000:]
    return outcomes


def test_the_core_tests_pass_through_the_proxy_as_they_do_directly(tmp_path: Path) -> None:
    with running_server(**SETTINGS) as server:
        base = server.ws_url.rsplit("/ws", 1)[0]
        direct = core_outcomes(server.ws_url, tmp_path)
        proxy = ProxyProcess(base)
        url = proxy.start()
        try:
            through = core_outcomes(url + "/ws", tmp_path)
        finally:
            counts = proxy.stop()
    assert "FAILED" not in direct.values() and "ERROR" not in direct.values(), direct
    assert through == direct
    assert sum(outcome == "PASSED" for outcome in through.values()) >= 90
    assert counts is not None and counts["faults"] == {} and counts["connections"] > 100
