"""Starting what a user starts (a `locust` web UI, a plain HTTP server) and stopping it again."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.socketproof.support import ROOT, clean_environment

BIN = Path(sys.executable).parent
"""The venv's bin: the README's `.venv/bin/` here."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen[Any], grace: float = 15.0) -> int | None:
    """SIGTERM the process group (Locust, its embedded server, any workers); SIGKILL after `grace`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait(10)


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def post_form(url: str, fields: dict[str, Any], timeout: float = 10.0) -> Any:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=timeout) as response:
        body = response.read()
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.3) -> Any:
    """Poll `predicate()` until it returns something truthy (which is returned) or fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, urllib.error.URLError, ValueError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


@contextlib.contextmanager
def web_ui(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`locust --web-host 127.0.0.1 --web-port P ARGS` from the repo root; yields the UI's base URL."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "locust"), "--web-host", "127.0.0.1", "--web-port", str(port), *args],
            cwd=ROOT,
            env=clean_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: process.poll() is not None or urllib.request.urlopen(base + "/", timeout=5).status == 200,
                60,
                "the web UI to answer",
            )
            assert process.poll() is None, f"locust exited with {process.returncode}:\n{log.read_text()}"
            yield base
        finally:
            stop_group(process)


@contextlib.contextmanager
def plain_http_server() -> Iterator[str]:
    """A plain HTTP server (no WebSocket) on a free loopback port: a `--host` mistake."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
