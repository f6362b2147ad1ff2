"""Running a proxy: in-process on its own gevent hub (`FaultProxy`) or as a child process (`ProxyProcess`).

    with FaultProxy("ws://127.0.0.1:8000", "drop=0.2", seed=1) as proxy:
        connect_to(proxy.url + "/ws"); ...; proxy.counts()

`FaultProxy` runs the relay on a daemon thread with its own hub (hub_thread.py), so plain
pytest threads can use it; `ProxyProcess` runs `python -m socketproof.proxy` (a Locust run
uses it, so the relay does not share a core with the users).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.child_process import ChildProcess
from socketproof.proxy.faults import FaultSpec, parse_spec
from socketproof.proxy.hub_thread import HubThread
from socketproof.proxy.limits import Limits

READY_MARK = "proxy listening on "
CUT_SIGNAL = signal.SIGUSR1
"""Sent to a proxy process: cut every connection now."""
PAUSE_SIGNAL = signal.SIGUSR2
"""Sent to a proxy process: stop forwarding, or, when stopped, forward again (a partition)."""
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class ProxyError(ValueError):
    """An option no proxy can run with (one line for the user)."""


def parse_upstream(url: str) -> tuple[str, int]:
    """`ws://host:port` (or http://; a trailing `/` is fine) -> (host, port); ProxyError says what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("ws", "http"):
        raise ProxyError(f"upstream must be a ws://host:port URL (wss is not supported), got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxyError(f"upstream must be ws://host:port with no path (clients keep theirs), got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ProxyError(f"upstream has a bad port: {url!r}") from None
    if not parts.hostname or port is None:
        raise ProxyError(f"upstream must name a host and a port, e.g. ws://127.0.0.1:8000, got {url!r}")
    return parts.hostname, port


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:0` -> ('127.0.0.1', 0); only loopback addresses (the proxy is a test tool)."""
    host, colon, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ProxyError(f"--listen must be HOST:PORT on loopback, e.g. 127.0.0.1:0, got {text!r}")
    if not is_loopback(host):
        raise ProxyError(f"--listen must be a loopback address (127.0.0.1, ::1, localhost), got {host!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FaultProxy:
    """A proxy on a daemon thread with its own gevent hub; a context manager, or start()/stop()."""

    def __init__(
        self,
        upstream: str,
        spec: str | FaultSpec = "",
        seed: int | None = None,
        listen: str = "127.0.0.1:0",
        limits: Limits | None = None,
    ) -> None:
        self.upstream = parse_upstream(upstream)
        self.spec = spec if isinstance(spec, FaultSpec) else parse_spec(spec)
        self.seed = seed
        self.listen = parse_listen(listen)
        self.limits = limits or Limits()
        self.url = ""
        self._hub = HubThread("socketproof-proxy", self._start, self._stop, STOP_TIMEOUT)
        self._server: Any = None
        self._final: dict[str, Any] | None = None

    def start(self) -> str:
        self.url = self._hub.start(START_TIMEOUT)
        return self.url

    def _start(self) -> str:
        from socketproof.proxy.relay import RelayServer

        self._server = RelayServer(self.upstream, self.spec, self.seed, self.listen, self.limits)
        return self._server.start()

    def _stop(self) -> None:
        self._server.stop()
        self._final = self._server.counts()

    def stop(self) -> None:
        if not self._hub.stop():
            raise RuntimeError(f"proxy did not stop within {STOP_TIMEOUT}s")

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Its thread is alive (from start() to the end of stop())."""
        return self._hub.alive

    @property
    def connections(self) -> int:
        """Relayed connections open now."""
        return self._hub.call(lambda: len(self._server.relays)) if self._running() else 0

    def counts(self) -> dict[str, Any]:
        """What the faults did and what was relayed (see RelayServer.counts); also after stop()."""
        if self._final is not None:
            return self._final
        return self._hub.call(self._server.counts)

    def _running(self) -> bool:
        return self.running and self._final is None


class ProxyProcess(ChildProcess):
    """`python -m socketproof.proxy` as a child: start() returns its URL, stop() its final counts."""

    ready_mark = READY_MARK

    def __init__(
        self,
        upstream: str,
        spec: str = "",
        seed: int | None = None,
        extra: tuple[str, ...] = (),
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.spec = spec
        self.seed = seed
        self.extra = extra
        self.limits = limits
        self.url = ""
        self._report = Path(tempfile.mkdtemp(prefix="socketproof-proxy-")) / "counts.json"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "socketproof.proxy", "--listen", "127.0.0.1:0", "--upstream", self.upstream]
        if self.spec:
            command += ["--faults", self.spec]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        if self.limits is not None:
            command += self.limits.args()
        return [*command, "--counts-file", str(self._report), *self.extra]

    def start(self, timeout: float = START_TIMEOUT) -> str:
        ready = self.launch(self.command(), {**os.environ, "PYTHONUNBUFFERED": "1"}, timeout)
        if ready is None:
            raise RuntimeError("proxy did not start: " + "".join(self.output).strip())
        self.url = ready.split(READY_MARK, 1)[1].split()[0]
        return self.url

    def cut(self) -> None:
        """Cut every connection through the proxy (RuntimeError: it is not running)."""
        self._signal(CUT_SIGNAL)

    def toggle_pause(self) -> None:
        """Stop forwarding, or forward again (RuntimeError: it is not running)."""
        self._signal(PAUSE_SIGNAL)

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("the fault proxy is not running")
        self.process.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, Any] | None:  # type: ignore[override]
        """SIGTERM, wait; the counts it wrote at exit (None when it had to be killed or wrote none)."""
        if self.process is None:
            return None
        if super().stop(timeout) is None:
            return None
        try:
            counts = json.loads(self._report.read_text())
        except (OSError, ValueError):
            return None
        finally:
            self._report.unlink(missing_ok=True)
            try:
                self._report.parent.rmdir()
            except OSError:
                pass
        return counts
