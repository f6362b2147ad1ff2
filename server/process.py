"""Run the reference server as a child process: for the embedded default target and for tests.

The child is `python -m server --port 0`; the URL comes from its one ready line. The
launcher itself (`ChildProcess`) is common/child_process.py, shared with the fault proxy.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from common.child_process import ROOT, ChildProcess

__all__ = ["ROOT", "READY_MARK", "ChildProcess", "ServerProcess"]  # ChildProcess, ROOT: still imported from here

READY_MARK = "listening on ws://"


class ServerProcess(ChildProcess):
    """A reference server child process; `start()` returns once it listens."""

    ready_mark = READY_MARK

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

    def start(self, timeout: float = 15.0, port: int = 0) -> str:
        ready = self.launch([sys.executable, "-m", "server", "--host", self.host, "--port", str(port)],
                            self.environment(), timeout)
        if ready is None:
            raise RuntimeError("reference server did not start:\n" + "".join(self.output))
        self.ws_url = ready.strip().rsplit(" ", 1)[-1]
        return self.ws_url

    @property
    def port(self) -> int:
        return int(self.ws_url.rsplit("/ws", 1)[0].rsplit(":", 1)[1])

    def restart(self, timeout: float = 15.0, attempts: int = 5) -> str:
        """Stop the server and start a new one on the same port: its state is lost, as with a
        real process restart (a port still held is tried again, `attempts` times)."""
        port = self.port
        self.stop()
        for attempt in range(attempts):
            self.reset()
            try:
                return self.start(timeout, port)
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.3)
        raise AssertionError("unreachable")
