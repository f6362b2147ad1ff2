"""Start and stop the real reference server (`python -m server --port 0`) for tests.

Settings go in as SOCKETPROOF_* environment variables, exactly as a user would set them.
Whatever is started here is stopped here, and a server that fails to start or to stop
fails the test with its own output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt

from server.config import DEFAULT_SECRET
from server.process import ServerProcess

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
    child: ServerProcess | None = None
    audience: str | None = None

    def token(self, user: str, ttl: float = 3600.0, **claims: Any) -> str:
        """A valid token for `user` (with the server's audience, when it has one)."""
        base: dict[str, Any] = {"sub": user, "exp": time.time() + ttl}
        if self.audience:
            base["aud"] = self.audience
        return jwt.encode({**base, **claims}, self.secret, algorithm="HS256")

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


@contextlib.contextmanager
def running_server(**settings: Any) -> Iterator[ServerHandle]:
    """Run `python -m server --port 0` with these settings; stop it afterwards."""
    child = ServerProcess(settings)
    child.start(START_TIMEOUT)
    handle = ServerHandle(
        ws_url=child.ws_url,
        http_url=child.http_url,
        secret=str(settings.get("jwt_secret", DEFAULT_SECRET)),
        process=child.process,
        output=child.output,
        child=child,
        audience=str(settings["jwt_audience"]) if settings.get("jwt_audience") else None,
    )
    try:
        yield handle
    finally:
        stop(handle)


def stop(handle: ServerHandle) -> None:
    """SIGTERM, wait, and insist the server exited by itself with status 0."""
    if handle.child is None or handle.process is None or handle.process.poll() is not None:
        return
    code = handle.child.stop(STOP_TIMEOUT)
    assert code is not None, f"reference server did not stop within {STOP_TIMEOUT}s"
    assert code == 0, f"reference server exited with {code}:\n{''.join(handle.output)}"
