"""The web UI listens on loopback unless the user says otherwise (issue 24, finding 1): it has no
login and its start endpoint runs load with the run's credentials. The real `locust`, started
from the repo root as a user would (the project's locust.conf picked up, no --web-host), must
listen on 127.0.0.1 only, as the kernel reports its listening sockets (/proc/net/tcp, tcp6).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.socketproof.support import ROOT, clean_environment

LISTEN = "0A"
"""The LISTEN state in /proc/net/tcp."""


def free_port() -> int:
    """A port free on every interface a moment ago (Locust prints, not returns, a port 0's pick)."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Every local address with a socket listening on `port` (hex as the kernel writes it)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                rows = lines.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.add(address)
    return found


def test_the_web_ui_listens_on_loopback_only_by_default() -> None:
    port = free_port()
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "--web-port", str(port), "--host", "ws://127.0.0.1:9"],
        cwd=ROOT, env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, page = time.monotonic() + 30.0, None
        while page is None and time.monotonic() < deadline and locust.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                    page = answer.status
            except OSError:
                time.sleep(0.2)
        assert page == 200, f"no web UI on 127.0.0.1:{port} within 30 s (exit {locust.poll()})"
        addresses = listening_addresses(port)
    finally:
        os.killpg(locust.pid, signal.SIGTERM)
        try:
            output, _ = locust.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(locust.pid, signal.SIGKILL)
            output, _ = locust.communicate(timeout=5)
    loopback = "0100007F"  # 127.0.0.1, little-endian hex
    assert addresses == {loopback}, f"listening on {addresses}, not 127.0.0.1 only\n{output.decode()[-2000:]}"
    assert f"http://127.0.0.1:{port}" in output.decode(), output.decode()[-2000:]
