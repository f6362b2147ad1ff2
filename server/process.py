"""Run the reference server as a child process: for the embedded default target and for tests.

The child is `python -m server --port 0`; the URL comes from its one ready line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
READY_MARK = "listening on ws://"


class ChildProcess:
    """A child Python process that prints a ready line, then runs until SIGTERM: the reference
    server here, the fault proxy in socketproof.proxy. Its output is kept in `output`."""

    ready_mark = READY_MARK

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    def launch(self, command: list[str], env: Mapping[str, str], timeout: float) -> str | None:
        """Start `command`, read until the ready line (returned) or `timeout`; then keep reading."""
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        assert self.process.stdout is not None
        ready = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if self.ready_mark in line:
                ready = line
                break
        if ready is None:
            self.kill()
            return None
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return ready

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        if self._reader is not None:
            self._reader.join(timeout)
        return process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class ServerProcess(ChildProcess):
    """A reference server child process; `start()` returns once it listens."""

    def __init__(self, settings: Mapping[str, Any] | None = None, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.settings = dict(settings or {})
        self.host = host
        self.ws_url = ""

    @property
    def http_url(self) -> str:
        return "http://" + self.ws_url[len("ws://") :].rsplit("/ws", 1)[0]

    def environment(self) -> dict[str, str]:
        """The child's environment: ours without SOCKETPROOF_*, plus our settings."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
        for name, value in self.settings.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(item) for item in value)
            env["SOCKETPROOF_" + name.upper()] = str(value)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = 15.0) -> str:
        ready = self.launch([sys.executable, "-m", "server", "--host", self.host, "--port", "0"],
                            self.environment(), timeout)
        if ready is None:
            raise RuntimeError("reference server did not start:\n" + "".join(self.output))
        self.ws_url = ready.strip().rsplit(" ", 1)[-1]
        return self.ws_url
