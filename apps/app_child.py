"""A test app as a child process (every app here): started on a free loopback port, its URL
read from its ready line, and at the end stopped and checked gone; `AppHandle`, what a test
holds of a running app (its URL, process, output and Prometheus metrics).

The stop is strict on purpose: the app must have stayed up for the whole test, exit 0 by
itself on SIGTERM, and leave nothing listening on its port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping

from common.child_process import ChildProcess


@dataclasses.dataclass
class AppHandle:
    """A running app: its base URL (http://127.0.0.1:PORT), process and output so far."""

    url: str
    process: subprocess.Popen[str]
    output: list[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        """ws://127.0.0.1:PORT: what `--host` takes."""
        return "ws" + self.url[len("http"):]

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    def metrics(self) -> dict[str, float]:
        """`/metrics` parsed: {"name": 2.0, 'name{kind="drop"}': 3.0, ...}."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def wait_metric(self, name: str, count: float, timeout: float = 10.0) -> None:
        """Until metric `name` reads `count`, at most `timeout` s."""
        deadline = time.monotonic() + timeout
        while (seen := self.metrics()[name]) != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} stayed {seen}, expected {count}")
            time.sleep(0.05)


@contextlib.contextmanager
def running_child(name: str, command: list[str], ready_mark: str, env: Mapping[str, str],
                  start_timeout: float = 20.0, stop_timeout: float = 15.0) -> Iterator[tuple[ChildProcess, str]]:
    """Yield (the child, the URL after `ready_mark` on its ready line)."""
    child = ChildProcess()
    child.ready_mark = ready_mark
    ready = child.launch(command, {**env, "PYTHONUNBUFFERED": "1"}, start_timeout)
    if ready is None:
        raise AssertionError(f"{name} did not start:\n" + "".join(child.output))
    url = ready.split(ready_mark, 1)[1].strip()
    process = child.process
    assert process is not None
    try:
        yield child, url
    finally:
        died = process.poll() is not None
        code = child.stop(stop_timeout)
        output = "".join(child.output)
        assert code is not None, f"{name} did not stop within {stop_timeout}s of SIGTERM:\n{output}"
        assert not died, f"{name} died during the test:\n{output}"
        assert code == 0, f"{name} exited with {code}:\n{output}"
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} of {name} still accepts connections"


__all__ = ["AppHandle", "running_child", "subprocess"]
