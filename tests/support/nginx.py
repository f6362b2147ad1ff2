"""A private nginx load-balancing WebSocket connections over local backends, for tests.

The system's `nginx` (Debian's package; `.ci/nginx.sh` installs it) runs as a child process
(`nginx -p ROOT -c ROOT/nginx.conf -e ROOT/error.log -g 'daemon off;'`) with everything of its
own in a temporary directory: config, pid file, error and access logs, temp paths (Debian's
compiled-in /var/lib/nginx and /var/log/nginx are never touched). It listens on one free
loopback port, picked just before the start (nginx cannot take port 0; a clash is tried again
with a new port). Run as root, its worker switches to `nobody` as usual: the master opens the
logs and makes the temp paths first, so the worker needs nothing more.

The config is what a WebSocket deployment needs: HTTP/1.1 to the backends with the Upgrade and
Connection headers passed, read/send timeouts of an hour (a quiet WebSocket is not a dead one),
and `proxy_next_upstream error timeout` with a 2 s connect timeout and `max_fails=0`, so that a
connect to a backend that is down (restarting) goes to the next one at once and no backend is
ever marked unavailable. The access log writes `$upstream_addr` per request (a WebSocket's
line comes when it closes): `upstream_addresses()` says which backends served connections.

`stop()` sends SIGTERM (fast shutdown: open WebSockets are cut) and fails when a process of its
group is still there afterwards (it is killed then) or its port still accepts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

INSTALL_HINT = ("nginx is not installed: as root, `apt-get install -y --no-install-recommends nginx` "
                "(bash .ci/nginx.sh does it)")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3

CONFIG = """\
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{
    worker_connections 4096;
}}
http {{
    log_format upstreams '$remote_addr "$request" $status upstream=$upstream_addr '
                         'upstream_status=$upstream_status seconds=$request_time';
    access_log {root}/access.log upstreams;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream backends {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_connect_timeout 2s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries {tries};
        }}
    }}
}}
"""


class NginxError(RuntimeError):
    """nginx did not start, or did not stop cleanly."""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepts(port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout):
        return True
    return False


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Nginx:
    """One private nginx balancing over `backends` (loopback ports); `start()` then `stop()`."""

    def __init__(self, binary: str, root: Path, backends: Sequence[int]) -> None:
        self.binary, self.root, self.backends = binary, root, list(backends)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """ws://127.0.0.1:P: a run's --host (the run adds the /ws path)."""
        return f"ws://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        (self.root / "temp").mkdir(exist_ok=True)
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=0;" for port in self.backends)
        path = self.root / "nginx.conf"
        path.write_text(CONFIG.format(root=self.root, port=self.port, servers=servers, tries=len(self.backends)))
        return path

    def start(self) -> None:
        last = ""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            try:
                self._start_once()
                return
            except NginxError as error:
                last = str(error)
                self._halt()
                if "address already in use" not in last.lower():
                    break
        raise NginxError(last)

    def _start_once(self) -> None:
        config = self.write_config()
        with open(self.root / "nginx.out", "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-p", str(self.root), "-c", str(config), "-e", str(self.root / "error.log"),
                 "-g", "daemon off;"],
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(self.port):
            if self.process.poll() is not None:
                raise NginxError(f"nginx exited with {self.process.returncode} while starting:\n{self.log()}")
            if time.monotonic() > deadline:
                raise NginxError(f"nginx did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT:g}s:\n"
                                 + self.log())
            time.sleep(0.05)

    def log(self, tail: int = 40) -> str:
        texts = []
        for name in ("nginx.out", "error.log"):
            with contextlib.suppress(OSError):
                lines = (self.root / name).read_text(errors="replace").splitlines()[-tail:]
                texts.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(texts)

    def upstream_addresses(self) -> list[str]:
        """Per access-log line, the backends nginx tried (`A, B` when A refused), in order."""
        found = []
        with contextlib.suppress(OSError):
            for line in (self.root / "access.log").read_text(errors="replace").splitlines():
                _, has, rest = line.partition(" upstream=")
                if has:
                    found.append(rest.split(" upstream_status=")[0])
        return found

    def stop(self) -> None:
        problems = self._halt()
        if problems:
            raise NginxError("; ".join(problems) + "\n" + self.log(20))

    def _halt(self) -> list[str]:
        problems: list[str] = []
        process, self.process = self.process, None
        if process is None:
            return problems
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its worker and exits
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"nginx did not stop within {STOP_TIMEOUT:g}s of SIGTERM")
        deadline = time.monotonic() + 5.0
        while group_alive(process.pid) and time.monotonic() < deadline:  # a worker may outlive the master briefly
            time.sleep(0.05)
        if group_alive(process.pid):
            problems.append("a process of nginx's group was left running (killed)")
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if self.port and accepts(self.port):
            problems.append(f"127.0.0.1:{self.port} still accepts after nginx stopped")
        return problems


@contextlib.contextmanager
def running_nginx(root: Path, backends: Sequence[int]) -> Iterator[Nginx]:
    """A private nginx over `backends` for the block; skips the test when nginx is absent."""
    binary = find_nginx()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    root.mkdir(parents=True, exist_ok=True)
    nginx = Nginx(binary, root, backends)
    try:
        nginx.start()
    except BaseException:
        nginx._halt()
        raise
    try:
        yield nginx
    finally:
        nginx.stop()
