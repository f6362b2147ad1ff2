"""A private RabbitMQ broker (web-stomp, web-mqtt, prometheus) for tests, started and stopped here.

The broker is the system's `rabbitmq-server` (Debian's package; `.ci/rabbitmq.sh` installs
it), run as a child process with everything of its own in a temporary directory: node name
(unique per run), config, enabled plugins, Mnesia, logs, Erlang cookie (HOME). Nothing
listens on a fixed port and nothing listens beyond 127.0.0.1:

- AMQP, web-stomp, web-mqtt, prometheus, the node's distribution port and the CLI's
  distribution port are free loopback ports picked at start; the plain STOMP (61613) and
  MQTT (1883) listeners the web plugins pull in are switched off (`stomp.listeners.tcp = none`).
- epmd, the Erlang port mapper, is normally one daemon per machine on 4369 that every
  Erlang node shares. This broker gets a private one instead: `epmd -port P -address
  127.0.0.1`, started here as a child (before the node, so the node never starts a shared
  one itself) and pointed at by `ERL_EPMD_PORT` for the node and for `rabbitmqctl`. The
  shared epmd is never started, asked or stopped.

The broker's own count of open connections, three ways. `connections_source` is what a user
points `--server-connections` at: the bundled rabbitmq_prometheus plugin's
`/metrics#rabbitmq_connections` (every protocol, no credentials, no management plugin; it
follows a close within ~15 ms, where the management API's `/api/overview` lags an open by the
5 s `collect_statistics_interval`). `wait_connections` polls it. `connections()` is the CLI's
count, kept to cross-check the metric: in RabbitMQ 3.10 `rabbitmqctl list_connections` shows
network (AMQP) connections only, and web-stomp and web-mqtt ones are "direct" connections it
leaves out, so the count is those plus every connection that owns a channel (`rabbitmqctl
list_channels connection`); the connection tracker (`tracked_connections()`, through
`rabbitmqctl eval`) is the third.

On teardown the broker gets SIGTERM (its start script shuts the node down cleanly), then
epmd; the teardown fails when a process of the broker's process group or of its node name
is left (killed then, by pid), or a port of its is still open. Start-up takes 7-10 s on two
shared cores (`RabbitMQ.started_in`); a stop ~6 s (the management agent rabbitmq_prometheus
needs holds the node's exit ~5 s after the last log line; without it a stop took ~1 s).
Without `rabbitmq-server` the fixture skips with the install command.

`running_rabbitmq()` is one broker for a block; the `rabbitmq` fixture (tests/conftest.py) is
one for the whole session, started on first use: a start costs ~10 s, so every test shares it
and keeps to its own client ids and destinations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socketproof.verdicts import server_count

START_TIMEOUT = 120.0
"""Seconds for the node to boot and both WebSocket endpoints to answer (about 5-10 s on 2 cores)."""
STOP_TIMEOUT = 60.0
CTL_TIMEOUT = 60.0
START_ATTEMPTS = 3
"""A picked port can be taken before the broker binds it: start again with new ports, this often."""

INSTALL_HINT = ("rabbitmq-server is not installed: as root, `apt-get install -y --no-install-recommends "
                "rabbitmq-server` (bash .ci/rabbitmq.sh does it)")
PLUGINS = ("rabbitmq_web_stomp", "rabbitmq_web_mqtt", "rabbitmq_prometheus")
CONNECTIONS_METRIC = "rabbitmq_connections"
"""rabbitmq_prometheus's gauge of the node's open client connections, every protocol."""
WS_PATH = "/ws"

_DEBIAN_SBIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's real scripts. /usr/sbin/rabbitmq-server is a wrapper that switches to the
rabbitmq user and into /var/lib/rabbitmq: not for a private node."""


class BrokerError(RuntimeError):
    """The broker did not start, or did not stop cleanly."""


def find_sbin() -> Path | None:
    """The folder of the real `rabbitmq-server` and `rabbitmqctl` scripts, or None."""
    candidates = [_DEBIAN_SBIN]
    found = shutil.which("rabbitmq-server")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)
    for folder in candidates:
        server, ctl = folder / "rabbitmq-server", folder / "rabbitmqctl"
        if server.exists() and ctl.exists() and os.access(server, os.X_OK):
            if os.path.basename(os.path.realpath(server)) != "rabbitmq-script-wrapper":
                return folder
    return None


def find_epmd() -> str | None:
    return shutil.which("epmd") or next(
        (str(path) for path in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd")) if os.access(path, os.X_OK)),
        None,
    )


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open until all are picked)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(probe)
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in held]
    finally:
        for probe in held:
            probe.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) for every process we can read (Linux /proc)."""
    found: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{name}/cmdline", "rb") as cmd:
                cmdline = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] == b"Z":
            continue  # a zombie holds no port and runs nothing; its parent reaps it
        found[int(name)] = (int(fields[2]), cmdline)
    return found


@dataclasses.dataclass
class Ports:
    amqp: int
    dist: int
    ctl: int
    epmd: int
    stomp: int
    mqtt: int
    prometheus: int

    def all(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class RabbitMQ:
    """What a test gets: both WebSocket URLs, the credentials, and the broker's own view."""

    stomp_url: str
    """ws://127.0.0.1:P/ws (web-stomp: one STOMP frame per WebSocket message)."""
    mqtt_url: str
    """ws://127.0.0.1:P/ws (web-mqtt: binary MQTT packets, subprotocol `mqtt`)."""
    connections_source: str
    """http://127.0.0.1:P/metrics#rabbitmq_connections: the `--server-connections` of a run."""
    user: str
    password: str
    vhost: str
    node: str
    ports: Ports
    started_in: float
    """Seconds from launching the node to both WebSocket endpoints answering."""
    broker: Broker

    def rabbitmqctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        return self.broker.ctl(*args, timeout=timeout)

    def list_connections(self, *fields: str) -> list[dict[str, Any]]:
        """`rabbitmqctl list_connections`: the broker's network (AMQP) connections only; in
        RabbitMQ 3.10 web-stomp and web-mqtt connections are direct ones and are not listed."""
        fields = fields or ("pid", "name", "protocol", "user", "state")
        return json.loads(self.rabbitmqctl("list_connections", *fields, "--formatter", "json", "--silent") or "[]")

    def list_channels(self, *fields: str) -> list[dict[str, Any]]:
        """`rabbitmqctl list_channels`: every channel, of network and direct connections alike
        (a web-stomp connection has one once CONNECTed, a web-mqtt connection one or two)."""
        fields = fields or ("connection", "name", "user", "consumer_count")
        return json.loads(self.rabbitmqctl("list_channels", *fields, "--formatter", "json", "--silent") or "[]")

    def connections(self) -> int:
        """The broker's count of open client connections, every protocol: the network
        connections plus the connections that own a channel (two CLI calls, ~1 s)."""
        pids = {row["pid"] for row in self.list_connections("pid")}
        pids |= {row["connection"] for row in self.list_channels("connection")}
        return len(pids)

    def metric_connections(self) -> int:
        """rabbitmq_prometheus's count, read as a run reads it (socketproof.verdicts.server_count)."""
        return server_count.read_count(self.connections_source)

    def tracked_connections(self) -> int:
        """The broker's connection tracker (`rabbit_connection_tracking:count()`, through
        `rabbitmqctl eval`): an internal API, kept as a cross-check of `connections()`."""
        return int(self.rabbitmqctl("eval", "rabbit_connection_tracking:count().").strip())

    def listening(self) -> set[tuple[str, int]]:
        """(address, port) of every socket the broker and its epmd listen on."""
        return self.broker.listening()

    def wait_connections(self, count: int, timeout: float = 15.0) -> int:
        """Poll `metric_connections()` (one local GET, ~5 ms) until it is `count`; the last count seen."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = self.metric_connections()
            except server_count.CountError as error:  # the broker stopped answering: say why, from its log
                raise BrokerError(f"{error} ({self.broker.process_state()})\n{self.log(40)}") from None
            if seen == count or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def log(self, tail: int = 60) -> str:
        return self.broker.log_tail(tail)


class Broker:
    """One private node and its private epmd; `start()` then `stop()`, once each."""

    def __init__(self, sbin: Path, epmd: str, root: Path) -> None:
        self.sbin, self.epmd_path, self.root = sbin, epmd, root
        self.node = f"socketproof-{os.getpid()}-{secrets.token_hex(4)}@localhost"
        self.user, self.password, self.vhost = "socketproof", secrets.token_urlsafe(12), "/"
        self.ports: Ports | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.epmd: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None
        self.shared_epmd_before = port_open(4369)

    # -- start ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        assert self.ports is not None
        root, ports = self.root, self.ports
        loopback_dist = "-kernel inet_dist_use_interface {127,0,0,1}"
        keep = {key: value for key, value in os.environ.items()
                if key in ("PATH", "TMPDIR", "USER", "LOGNAME") and value}
        return {
            **keep,
            "HOME": str(root / "home"),  # the node's and the CLI's .erlang.cookie
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(ports.dist),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback_dist,
            "RABBITMQ_CTL_ERL_ARGS": loopback_dist,
            "RABBITMQ_CTL_DIST_PORT_MIN": str(ports.ctl),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(ports.ctl),
            "ERL_EPMD_PORT": str(ports.epmd),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def write_files(self) -> None:
        assert self.ports is not None
        ports, root = self.ports, self.root
        for folder in ("home", "mnesia", "log"):
            (root / folder).mkdir(mode=0o700, exist_ok=True)
        (root / "rabbitmq-env.conf").write_text("# empty: nothing from /etc/rabbitmq/rabbitmq-env.conf\n")
        (root / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
        (root / "rabbitmq.conf").write_text("\n".join([
            f"listeners.tcp.default = 127.0.0.1:{ports.amqp}",
            "listeners.ssl = none",
            "stomp.listeners.tcp = none",
            "stomp.listeners.ssl = none",
            "mqtt.listeners.tcp = none",
            "mqtt.listeners.ssl = none",
            "mqtt.allow_anonymous = false",
            "web_stomp.tcp.ip = 127.0.0.1",
            f"web_stomp.tcp.port = {ports.stomp}",
            "web_mqtt.tcp.ip = 127.0.0.1",
            f"web_mqtt.tcp.port = {ports.mqtt}",
            "prometheus.tcp.ip = 127.0.0.1",
            f"prometheus.tcp.port = {ports.prometheus}",
            f"default_user = {self.user}",
            f"default_pass = {self.password}",
            "default_vhost = /",
            "log.console = false",
            "log.file.level = info",
            "",
        ]))

    def start(self) -> None:
        """Boot the node (new ports on a port clash, `START_ATTEMPTS` times at most)."""
        last = ""
        for _ in range(START_ATTEMPTS):
            self.ports = Ports(*free_ports(7))
            self.write_files()
            try:
                self._start_once()
                return
            except BrokerError as error:
                last = str(error)
                self._halt()
                if "eaddrinuse" not in last.lower() and "address already in use" not in last.lower():
                    break
        raise BrokerError(last)

    def _start_once(self) -> None:
        assert self.ports is not None
        env = self.env()
        self.epmd = subprocess.Popen(
            [self.epmd_path, "-port", str(self.ports.epmd), "-address", "127.0.0.1"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10.0
        while not port_open(self.ports.epmd):
            if self.epmd.poll() is not None or time.monotonic() > deadline:
                raise BrokerError(f"epmd did not listen on 127.0.0.1:{self.ports.epmd} (exit {self.epmd.poll()})")
            time.sleep(0.05)
        began = time.monotonic()
        with open(self.root / "server.out", "wb") as out:
            self.server = subprocess.Popen(
                [str(self.sbin / "rabbitmq-server")], env=env, cwd=self.root,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = began + START_TIMEOUT
        waiting = {"web-stomp": self.ports.stomp, "web-mqtt": self.ports.mqtt, "prometheus": self.ports.prometheus}
        while waiting:
            if self.server.poll() is not None:
                raise BrokerError(f"rabbitmq-server exited with {self.server.returncode} while starting:\n"
                                  + self.log_tail(40))
            if time.monotonic() > deadline:
                raise BrokerError(f"{', '.join(waiting)} did not answer within {START_TIMEOUT:.0f}s:\n"
                                  + self.log_tail(40))
            for name, port in list(waiting.items()):
                if _metrics_answer(port) if name == "prometheus" else _websocket_answers(port):
                    del waiting[name]
            time.sleep(0.1)
        self.started_in = time.monotonic() - began

    # -- the CLI ---------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """Run `rabbitmqctl -n NODE ARGS` against this node; its stdout (raises on failure)."""
        result = subprocess.run(
            [str(self.sbin / "rabbitmqctl"), "-n", self.node, *args], env=self.env(), cwd=self.root,
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} exited with {result.returncode}: "
                              f"{(result.stderr or result.stdout).decode(errors='replace').strip()[-2000:]}")
        return result.stdout.decode(errors="replace")

    def process_state(self) -> str:
        """`rabbitmq-server exited with N`, or `... still running (pid P)`: for a broker that stopped answering."""
        server = self.server
        if server is None:
            return "rabbitmq-server stopped by the fixture"
        code = server.poll()
        if code is not None:
            return f"rabbitmq-server exited with {code}"
        return f"rabbitmq-server still running (pid {server.pid})"

    def log_tail(self, lines: int = 60) -> str:
        texts = []
        for path in [self.root / "server.out", *sorted((self.root / "log").glob("*.log"))]:
            with contextlib.suppress(OSError):
                texts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def listening(self) -> set[tuple[str, int]]:
        """(address, port) of the TCP sockets in LISTEN state that this broker's processes
        (its process group, and epmd) hold, from /proc (Linux)."""
        groups = {proc.pid for proc in (self.server, self.epmd) if proc is not None}
        inodes: set[str] = set()
        for pid, (group, _) in _processes().items():
            if group not in groups:
                continue
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if target.startswith("socket:["):
                            inodes.add(target[8:-1])
        found: set[tuple[str, int]] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                        continue
                    address, port = fields[1].split(":")
                    found.add((_address(address), int(port, 16)))
        return found

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the node and its epmd; raise BrokerError naming whatever had to be killed."""
        problems = self._halt()
        if problems:
            raise BrokerError("; ".join(problems) + "\n" + self.log_tail(20))

    def _halt(self) -> list[str]:
        problems: list[str] = []
        server, self.server = self.server, None
        if server is not None:
            pgid = server.pid  # start_new_session: the script is its own process group's leader
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)  # the start script runs a clean node shutdown
                try:
                    server.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"rabbitmq-server did not stop within {STOP_TIMEOUT:.0f}s of SIGTERM")
            deadline = time.monotonic() + 10.0
            while True:  # the VM can outlive the script by a moment
                left = {pid: cmd for pid, (group, cmd) in _processes().items()
                        if group == pgid or self.node in cmd}
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if left:
                problems.append(f"left running after stop, killed: {sorted(left.items())}")
                for pid in left:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
        epmd, self.epmd = self.epmd, None
        if epmd is not None and epmd.poll() is None:
            epmd.terminate()
            try:
                epmd.wait(10)
            except subprocess.TimeoutExpired:
                epmd.kill()
                epmd.wait(5)
                problems.append("the private epmd ignored SIGTERM")
        if self.ports is not None:
            still = {name: port for name, port in self.ports.all().items() if name != "ctl" and port_open(port)}
            if still:
                problems.append(f"ports still open after stop: {still}")
        if not self.shared_epmd_before and port_open(4369):
            problems.append("an epmd now listens on the shared port 4369: something ignored ERL_EPMD_PORT")
        return problems


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address (32-bit words in host order, little-endian here) as text."""
    raw = bytes.fromhex(hex_address)
    return str(ipaddress.ip_address(b"".join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))))


def _websocket_answers(port: int) -> bool:
    """True when an upgrade to ws://127.0.0.1:port/ws gets 101 (a raw request: no client library)."""
    request = (f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp, mqtt\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(b"HTTP/1.1 101")
    except OSError:
        return False


def _metrics_answer(port: int) -> bool:
    """True when http://127.0.0.1:port/metrics has the connections metric."""
    try:
        server_count.read_count(f"http://127.0.0.1:{port}/metrics#{CONNECTIONS_METRIC}", timeout=2.0)
        return True
    except server_count.CountError:
        return False


@contextlib.contextmanager
def running_rabbitmq() -> Iterator[RabbitMQ]:
    """A private broker for the duration of the block; skips the test when RabbitMQ is absent."""
    sbin, epmd = find_sbin(), find_epmd()
    if sbin is None or epmd is None:
        pytest.skip(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="socketproof-rabbitmq-") as tmp:
        broker = Broker(sbin, epmd, Path(tmp))
        try:
            broker.start()
        except BaseException:
            broker._halt()
            raise
        assert broker.ports is not None and broker.started_in is not None
        handle = RabbitMQ(
            stomp_url=f"ws://127.0.0.1:{broker.ports.stomp}{WS_PATH}",
            mqtt_url=f"ws://127.0.0.1:{broker.ports.mqtt}{WS_PATH}",
            connections_source=f"http://127.0.0.1:{broker.ports.prometheus}/metrics#{CONNECTIONS_METRIC}",
            user=broker.user, password=broker.password, vhost=broker.vhost, node=broker.node,
            ports=broker.ports, started_in=broker.started_in, broker=broker,
        )
        try:
            yield handle
        finally:
            broker.stop()
