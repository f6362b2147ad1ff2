"""A hung target is not a pass (issue 12, finding 3): real `locust --headless` runs against real
TCP listeners on loopback that accept and never answer.

Before: a pre-flight warning, 0 requests, every verdict UNKNOWN and exit 0.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.socketproof.support import run_locust
from tests.support.faultproxy import FaultProxy
from tests.support.server import running_server


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """A listening socket nobody accepts from: the kernel completes the TCP handshake, nothing answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}"


class HangsAfterFirst(FaultProxy):
    """Forwards its first connection (the pre-flight) to the real server; every later one is
    accepted, read and never answered: a server that hangs once the run starts."""

    def _handle(self, downstream: Any, address: Any) -> None:
        if self.accepted == 0:
            super()._handle(downstream, address)
            return
        self.accepted += 1
        try:
            while downstream.recv(65536):
                pass
        except OSError:
            pass
        finally:
            downstream.close()


def test_headless_pre_flight_exits_2_with_the_reason_when_the_target_never_answers(tmp_path: Path) -> None:
    with silent_listener() as host:
        started = time.monotonic()
        run = run_locust(["--host", host, "--run-time", "30s", "--users", "2", "--spawn-rate", "2"], tmp_path)
        seconds = time.monotonic() - started
    assert run.returncode == 2, run.describe()
    lines = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert len(lines) == 1 and "sent no handshake answer" in lines[0] and "check --host" in lines[0], run.describe()
    assert "Traceback" not in run.stderr
    assert seconds < 20, f"the pre-flight took {seconds:.1f}s"
    assert not run.leftovers


def test_a_run_without_one_successful_request_exits_1_whatever_strict_says(tmp_path: Path) -> None:
    with running_server(jwt_secret="hung-target-test-secret-0123456789") as server:
        target = server.ws_url.rsplit(":", 1)[1].split("/")[0]
        with HangsAfterFirst(("127.0.0.1", int(target))) as proxy:
            run = run_locust(
                ["--host", proxy.url, "--jwt-secret", "hung-target-test-secret-0123456789", "--run-time", "6s",
                 "--users", "3", "--spawn-rate", "3", "--stop-timeout", "2"],
                tmp_path,
            )
            assert proxy.accepted > 2, "the pre-flight and then the users came"
    # Connects still waiting (--request-timeout 10 s) when the 6 s run ends: 0 requests, as in the issue.
    assert run.returncode == 1, run.describe()
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert checks["no_evidence"] is True and checks["exit_code"] == 1, checks
    assert "not one request succeeded" in run.stdout, run.describe()
    assert "Exit code 1" in run.stdout
    assert not run.leftovers
