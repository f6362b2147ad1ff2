"""Issue 27: a rolling restart behind a real load balancer, under 50 users.

One state server (the reference server, `python -m server`), two stateless gateways in front of
it (`python -m server.gateway`), a private nginx balancing over the gateways (tests/support/
nginx.py), and a headless Locust run through nginx. At 10 s the run's `--disrupt 'run ...'`
calls docs/examples/rolling_restart.py, which restarts gateway a, then gateway b: each closes
its clients with 1001, keeps its upstreams open for DRAIN seconds (the messages delivered to
them then reach nobody) and exits; nginx sends the reconnects to the other one.

- With resume (the gateways pass `?last_seq` on): the users resume through the other gateway and
  the state server replays what the drain swallowed: exit 0, ordering, duplicates and loss PASS,
  the recovery row counts the lost connections that came back and 0 missed.
- With `--forget-resume` (a gateway that loses its replay state on restart): the same messages
  are never replayed. The resuming connections asked for them (`last_seq`) and got `resumed:
  false` with no gap announced: the loss check finds the seq holes, all on connections opened
  inside the disruption window, and the run exits 1. (The recovery row's stamp-based `missed`
  stays 0 in this drill: see the issue 27 report.)

Several identities per user pool (IDENTITIES < USERS: a few connections per identity, as tabs)
so that a lost connection has peers of its own identity that stay connected and publish to it
through the restart: every restart then gives streams the recovery check can compare.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from checks.recovery import WINDOW
from server.process import READY_MARK, ServerProcess
from tests.socketproof.support import ROOT, LocustRun, run_locust
from tests.support.nginx import accepts, running_nginx

SCRIPT = ROOT / "docs" / "examples" / "rolling_restart.py"
_spec = importlib.util.spec_from_file_location("rolling_restart", SCRIPT)
assert _spec is not None and _spec.loader is not None
rolling_restart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rolling_restart)
running = rolling_restart.running
"""The script's own test of a live process (a zombie counts as exited), so both agree."""
USERS = 50
IDENTITIES = 10
DRAIN = 3.0
"""Seconds each gateway keeps its upstreams after closing its clients: longer than a user takes
to reconnect (BACKOFF), so every restart swallows messages that only a resume brings back."""
BACKOFF = "exp:1s..4s,jitter=none"
"""A lost user waits 1 s before it reconnects (a client's usual first back-off): the messages its
peers publish meanwhile reach only the draining gateway, so each restart owes some to a resume."""
SERVER = {"heartbeat_interval": 2, "heartbeat_timeout": 2, "max_connections_per_user": 20}
"""Short heartbeats (every check gets evidence); room for a few tabs per identity plus the
upstreams of the draining gateway."""
RUN = ["-u", str(USERS), "-r", "25", "-t", "30s", "--identities", str(IDENTITIES), "--send-interval", "0.2",
       "--reconnect-backoff", BACKOFF, "ChatUser"]
WAIT = 15.0


class Gateways:
    """The gateway instances, started as rolling_restart.py restarts them (own session, output to a
    log, NAME.json in `folder`); `stop()` ends whatever pid each file names at the end."""

    def __init__(self, folder: Path, upstream: str, extra: tuple[str, ...] = ()) -> None:
        self.folder, self.upstream, self.extra = folder, upstream, extra
        folder.mkdir(parents=True, exist_ok=True)
        self.children: list[subprocess.Popen[bytes]] = []

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "server.gateway", "--upstream", self.upstream, "--port", str(port),
                "--drain", str(DRAIN), *self.extra]

    def start(self, name: str) -> int:
        """Start gateway `name` on a free port (port 0: no race) and write its NAME.json."""
        log = self.folder / f"{name}.log"
        with open(log, "ab") as out:
            child = subprocess.Popen(self.command(0), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(child)
        deadline = time.monotonic() + WAIT
        while READY_MARK not in log.read_text() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = [line for line in log.read_text().splitlines() if READY_MARK in line]
        assert ready, f"gateway {name} did not start:\n{log.read_text()}"
        port = int(ready[0].rsplit(":", 1)[1].split("/")[0])
        (self.folder / f"{name}.json").write_text(json.dumps(
            {"command": self.command(port), "cwd": str(ROOT), "port": port, "pid": child.pid, "log": str(log)}))
        return port

    def specs(self) -> dict[str, dict]:
        return {path.stem: json.loads(path.read_text()) for path in sorted(self.folder.glob("*.json"))}

    def logs(self) -> dict[str, str]:
        return {path.stem: path.read_text() for path in sorted(self.folder.glob("*.log"))}

    def stop(self) -> list[str]:
        """SIGTERM every instance the files name (and our first children); problems, if any remain."""
        problems: list[str] = []
        pids = {spec["pid"]: name for name, spec in self.specs().items()}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in self.children:  # ours: reaped here; a restarted one is polled below
            try:
                child.wait(WAIT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
                problems.append(f"gateway pid {child.pid} ignored SIGTERM")
        deadline = time.monotonic() + WAIT
        for pid, name in pids.items():
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if running(pid):
                os.kill(pid, signal.SIGKILL)
                problems.append(f"gateway {name} (pid {pid}) outlived SIGTERM (killed)")
        problems += [f"gateway {name} still accepts on {spec['port']}" for name, spec in self.specs().items()
                     if accepts(spec["port"])]
        return problems


def rolling_restart_run(tmp_path: Path, gateway_args: tuple[str, ...] = (),
                        extra: tuple[str, ...] = ()) -> tuple[LocustRun, Gateways, list[str]]:
    """The whole drill; returns the run, the gateways (logs, pids) and nginx's upstream addresses."""
    server = ServerProcess(SERVER)
    server.start()
    gateways = Gateways(tmp_path / "gateways", server.ws_url, gateway_args)
    problems: list[str] = []
    try:
        ports = [gateways.start("a"), gateways.start("b")]
        with running_nginx(tmp_path / "nginx", ports) as nginx:
            command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SCRIPT))} {shlex.quote(str(gateways.folder))}"
            run = run_locust([*RUN, "--host", nginx.url, "--disrupt", f"10s:run {command}", *extra],
                             tmp_path / "run", timeout=120)
            addresses = nginx.upstream_addresses()
    finally:
        problems += gateways.stop()
        code = server.stop(10)
        if code != 0:
            problems.append(f"state server exit {code}")
    assert not problems, problems
    assert not run.leftovers, run.describe()
    assert not accepts(server.port), "the state server's port is still open"
    return run, gateways, addresses


def drill_of(run: LocustRun) -> dict:
    [drill] = run.verdicts["recovery"]["stats"]["disruptions"]
    print(f"{run.report_dir.parent.name}: exit {run.returncode} in {run.seconds:.1f}s; lost "
          f"{drill['connections_lost']} connections ({drill['identities_lost']} identities), back in "
          f"{drill['recovery_s']}, outage {drill['outage_messages']}, script {drill['detail']!r}; loss "
          f"{run.verdicts['loss']['valid']} (lost seqs {run.verdicts['loss']['stats'].get('lost_seqs')})")
    return drill


def assert_connections_moved(gateways: Gateways, addresses: list[str], logs_dropped: bool) -> None:
    """Both instances served connections; nginx retried refused connects on the other one; each
    instance had clients when it was restarted, and the first, restarted, got the second's."""
    specs = gateways.specs()
    ports = {str(spec["port"]) for spec in specs.values()}
    served = {port for line in addresses for port in ports if line.endswith(f":{port}")}
    assert served == ports, (ports, addresses[-20:])
    assert any("," in line for line in addresses), "no connect went to the other instance after a refusal"
    logs = gateways.logs()
    for name, text in logs.items():
        stops = [line for line in text.splitlines() if line.startswith("gateway stopped:")]
        assert len(stops) == 2, (name, text[-2000:])  # the rolling restart's, then ours
        assert "closed 0 at shutdown" not in stops[0], (name, stops)  # it had clients when restarted
    first = [line for line in logs["a"].splitlines() if line.startswith("gateway stopped:")][1]
    assert "served 0 connections" not in first, first  # b's users moved to the restarted a
    if logs_dropped:
        dropped = sum(int(line.split("dropped ")[1].split()[0]) for text in logs.values()
                      for line in text.splitlines() if line.startswith("gateway stopped:"))
        assert dropped > 0, logs


def test_rolling_restart_with_resume_loses_nothing(tmp_path: Path) -> None:
    run, gateways, addresses = rolling_restart_run(tmp_path)
    drill = drill_of(run)
    assert run.returncode == 0, run.describe()
    verdicts = run.verdicts
    for name in ("ordering", "duplicates", "loss"):
        assert verdicts[name]["valid"] is True, verdicts[name]
    assert verdicts["recovery"]["valid"] is True, verdicts["recovery"]
    assert drill["result"] == "done" and drill["exit_code"] == 0, drill
    assert drill["connections_lost"] >= USERS and drill["never_back_count"] == 0, drill
    assert drill["recovered"] == drill["identities_lost"] == IDENTITIES, drill
    messages = drill["outage_messages"]
    assert messages["missed"] == 0 and messages["streams_compared"] > 0, messages
    assert verdicts["loss"]["stats"]["lost_seqs"] == 0, verdicts["loss"]["stats"]  # what --forget-resume loses
    assert_connections_moved(gateways, addresses, logs_dropped=True)
    assert "a: back as pid" in run.stderr + run.stdout and "b: back as pid" in run.stderr + run.stdout


def test_a_gateway_that_forgets_resume_is_caught_as_loss_in_the_disruption_window(tmp_path: Path) -> None:
    """The same drill with gateways that drop `last_seq`: the resuming connections ask for the
    messages the drain swallowed, get `resumed: false` with no gap announced and never get them.
    The loss check finds those seq holes, every one on a connection opened inside the disruption
    window (its evidence), and fails the run; ordering and duplicates still PASS."""
    run, gateways, addresses = rolling_restart_run(tmp_path, ("--forget-resume",))
    drill = drill_of(run)
    assert run.returncode == 1, run.describe()
    verdicts = run.verdicts
    for name in ("ordering", "duplicates"):
        assert verdicts[name]["valid"] is True, verdicts[name]
    loss = verdicts["loss"]
    assert loss["valid"] is False and loss["stats"]["lost_seqs"] > 0, loss
    start, end = drill["started_at"], drill["ended_at"] + WINDOW
    for anomaly in loss["anomalies"]:  # seq holes of the connections that resumed in vain
        evidence = anomaly["evidence"]
        assert anomaly["kind"] == "lost" and start <= evidence["opened_at"] <= end, anomaly
        assert evidence["expect_from"] <= evidence["missing"][0][0], anomaly  # right after its resume point
    assert drill["outage_messages"]["replayed"] == 0, drill  # nothing was resumed
    assert drill["result"] == "done" and drill["never_back_count"] == 0, drill
    assert drill["recovered"] == drill["identities_lost"], drill
    assert_connections_moved(gateways, addresses, logs_dropped=True)
