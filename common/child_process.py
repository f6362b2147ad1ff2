"""Run a child Python process that prints one ready line, then runs until SIGTERM.

The reference server (server/process.py), the fault proxy (socketproof/proxy/control.py) and
the test apps (apps/app_child.py) are each started this way; the ready line carries the URL.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository: the child's working directory, so `python -m server` and the like resolve."""


class ChildProcess:
    """A child process that prints a ready line (one with `ready_mark` in it), then runs until
    SIGTERM. Its output is kept in `output`."""

    ready_mark = ""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._reader: threading.Thread | None = None
        self._ready_line: str | None = None
        self._ready = threading.Event()

    def reset(self) -> None:
        """Forget an ended child, so that `launch` can start it again (a restart)."""
        self.process = None
        self.output = []
        self._reader = None
        self._ready_line = None
        self._ready = threading.Event()

    def launch(self, command: list[str], env: Mapping[str, str], timeout: float) -> str | None:
        """Start `command` and return its ready line; None (and the child killed) when it ends
        or stays silent for `timeout` seconds before one. Its output goes on being kept."""
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ready.wait(timeout)
        ready = self._ready_line
        if ready is None:
            self.kill()
            self._reader.join(timeout)
        return ready

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        try:
            for line in self.process.stdout:
                self.output.append(line)
                if self._ready_line is None and self.ready_mark in line:
                    self._ready_line = line
                    self._ready.set()
        finally:
            self._ready.set()  # it ended before a ready line

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
