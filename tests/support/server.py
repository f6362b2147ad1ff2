"""Start and stop the real reference server (`python -m server --port 0`) for tests.

Settings go in as SOCKETPROOF_* environment variables, exactly as a user would set them.
Whatever is started here is stopped here, and a server that fails to start or to stop
fails the test with its own output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRET = "socketproof-development-secret-change-me"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@dataclasses.dataclass
class ServerHandle:
    """How a test reaches a running server."""

    ws_url: str
    http_url: str
    secret: str
    process: subprocess.Popen[str] | None = None
    output: list[str] = dataclasses.field(default_factory=list)

    def token(self, user: str, ttl: float = 3600.0, **claims: Any) -> str:
        return jwt.encode({"sub": user, "exp": time.time() + ttl, **claims}, self.secret, algorithm="HS256")

    def admin_token(self) -> str:
        return self.token("socketproof-admin", role="admin")

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """GET an HTTP path; returns (status, parsed JSON body or text)."""
        request = urllib.request.Request(self.http_url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def stats(self) -> dict[str, Any]:
        status, body = self.get("/stats", self.admin_token())
        assert status == 200, f"/stats answered {status}: {body}"
        return body

    def wait_stats(self, timeout: float = 5.0, **expected: int) -> dict[str, Any]:
        """Poll /stats until the given fields have the given values (or fail with the last seen)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(stats.get(key) == value for key, value in expected.items()):
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"/stats did not reach {expected} within {timeout}s: {stats}")
            time.sleep(0.02)


def _drain(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


@contextlib.contextmanager
def running_server(**settings: Any) -> Iterator[ServerHandle]:
    """Run `python -m server --port 0` with these settings; stop it afterwards."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SOCKETPROOF_")}
    secret = str(settings.get("jwt_secret", DEFAULT_SECRET))
    for name, value in settings.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        env["SOCKETPROOF_" + name.upper()] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    ws_url = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "listening on ws://" in line:
            ws_url = line.strip().rsplit(" ", 1)[-1]
            break
    if ws_url is None:
        process.kill()
        process.wait(STOP_TIMEOUT)
        raise RuntimeError("reference server did not start:\n" + "".join(output))
    reader = threading.Thread(target=_drain, args=(process.stdout, output), daemon=True)
    reader.start()
    http_url = "http://" + ws_url[len("ws://") :].rsplit("/ws", 1)[0]
    handle = ServerHandle(ws_url=ws_url, http_url=http_url, secret=secret, process=process, output=output)
    try:
        yield handle
    finally:
        stop(handle)
        reader.join(timeout=STOP_TIMEOUT)


def stop(handle: ServerHandle) -> None:
    """SIGTERM, wait, and insist the server exited by itself with status 0."""
    process = handle.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
        raise AssertionError("reference server did not stop within %ss" % STOP_TIMEOUT) from None
    assert code == 0, f"reference server exited with {code}:\n{''.join(handle.output)}"
