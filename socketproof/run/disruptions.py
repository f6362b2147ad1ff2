"""`--disrupt 'AT:ACTION'`: disruptions at known moments of a run, and what became of each.

AT is seconds from the run's start (`15s`, `1m30s`, `2m`); ACTION is one of
- `run COMMAND`: COMMAND once through the shell on the master or local runner, bounded by
  RUN_TIMEOUT, its output logged line by line, its exit code reported;
- `restart`: the embedded reference server stopped and started again on the same port (its
  state lost, as a real process restart loses it); needs the embedded server (no --host);
- `cut`: the fault proxy cuts every connection; needs --proxy-faults (e.g. `none`);
- `pause=Ns`: the fault proxy forwards nothing for N seconds (a partition); needs --proxy-faults.

`parse_disruptions` is pure (a bad spec: OptionError naming --disrupt); `Schedule` runs them
with gevent timers from test_start and is cancelled at test_stop; its `records()` go into the
history (History.disruptions), where the recovery check (checks/recovery.py) reads them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent

from socketproof.run import latency_windows
from socketproof.run.options import OptionError

log = logging.getLogger("socketproof")

EXCUSE_AFTER = 10.0
"""Seconds after a disruption's end in which a failed request is counted as its doing (the
reconnect storm; the recovery check measures it over the same window, checks.recovery.WINDOW)."""
REPORT_SLACK = 3.0
"""Seconds between a worker's stats reports (Locust's WORKER_REPORT_INTERVAL): how late a master
hears of a failure, so how far past a disruption's window a report's failures still count."""
RUN_TIMEOUT = 300.0
"""Seconds a `run` command may take; then it is killed (with its process group) and reported failed."""
ACTIONS = "run COMMAND, restart, cut, pause=Ns"
_AT = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?$")
_PAUSE = re.compile(r"^pause\s*=\s*(?P<s>\d+(?:\.\d+)?)s$")


@dataclasses.dataclass(frozen=True)
class Disruption:
    """One parsed --disrupt: `at` seconds from the run's start, `action` (run, restart, cut, pause)."""

    spec: str
    at: float
    action: str
    command: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """`8s restart`, `1m30s run`: how the log and the progress line name it."""
        return f"{self.spec.partition(':')[0].strip()} {self.action}"

    @property
    def needs(self) -> str | None:
        """"embedded" (restart), "proxy" (cut, pause) or None (run)."""
        return {"restart": "embedded", "cut": "proxy", "pause": "proxy"}.get(self.action)


def parse_at(text: str) -> float | None:
    """`15s`, `1m30s`, `2m`, `1h` -> seconds; None when it is none of these."""
    m = _AT.match(text.strip())
    if m is None or not any(m.groups()):
        return None
    return int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60 + float(m["s"] or 0)


def parse_disruption(spec: str) -> Disruption:
    """One `AT:ACTION` (OptionError naming --disrupt and what to write)."""
    usage = f"expected AT:ACTION, e.g. '15s:restart', with AT like 15s or 1m30s and ACTION one of {ACTIONS}"
    at_text, sep, action = (spec or "").partition(":")
    at = parse_at(at_text) if sep else None
    if at is None:
        raise OptionError(f"--disrupt {spec!r}: {usage}")
    action = action.strip()
    word, _, rest = action.partition(" ")
    if word == "run":
        if not rest.strip():
            raise OptionError(f"--disrupt {spec!r}: run needs a command, e.g. '20s:run ./rolling-restart.sh'")
        return Disruption(spec.strip(), at, "run", command=rest.strip())
    if action in ("restart", "cut"):
        return Disruption(spec.strip(), at, action)
    pause = _PAUSE.match(action)
    if pause is not None and float(pause["s"]) > 0:
        return Disruption(spec.strip(), at, "pause", seconds=float(pause["s"]))
    if action.startswith("pause"):
        raise OptionError(f"--disrupt {spec!r}: pause needs seconds above 0, e.g. '20s:pause=5s'")
    raise OptionError(f"--disrupt {spec!r}: unknown action {action!r}; {usage}")


def parse_disruptions(specs: Iterable[str] | None, *, embedded: bool, proxy: bool) -> list[Disruption]:
    """Every --disrupt, checked against what the run has: `embedded` (no --host: the embedded
    reference server) and `proxy` (--proxy-faults). OptionError names the option that is missing."""
    disruptions = sorted((parse_disruption(spec) for spec in specs or []), key=lambda d: d.at)
    for d in disruptions:
        if d.needs == "embedded" and not embedded:
            raise OptionError(f"--disrupt {d.spec!r}: restart needs the embedded reference server (run without "
                              "--host); restart your own server with 'AT:run COMMAND'")
        if d.needs == "proxy" and not proxy:
            raise OptionError(f"--disrupt {d.spec!r}: {d.action} needs the fault proxy: add --proxy-faults "
                              "(e.g. --proxy-faults none)")
    return disruptions


@dataclasses.dataclass
class Targets:
    """What the built-in actions act on: the embedded server's restart, the run's proxy process."""

    restart: Callable[[], Any] | None = None
    proxy: Any = None
    """socketproof.proxy.control.ProxyProcess (cut(), toggle_pause())."""
    latency: latency_windows.Probe | None = None
    """A snapshot of the run's `deliver` latency histogram (latency before/during/after)."""


class Schedule:
    """The run's disruptions on gevent timers; `records()` say what each did."""

    def __init__(self, disruptions: list[Disruption], targets: Targets) -> None:
        self.disruptions = disruptions
        self.targets = targets
        self.started_at: float | None = None
        self.greenlets: list[gevent.Greenlet] = []
        self._records: dict[str, dict[str, Any]] = {}
        self._snapshots: dict[str, dict[str, latency_windows.Histogram]] = {}
        self.failures_during = 0
        """Requests that failed while a disruption went on or within EXCUSE_AFTER after it."""
        self.last_status = ""
        """`disrupt 8s restart: done (back in 0.6s)`: the latest, for the progress line."""

    def start(self) -> None:
        """test_start: schedule every disruption from now."""
        self.started_at = time.time()
        self._records = {d.spec: {"spec": d.spec, "at": d.at, "action": d.action, "started_at": None,
                                  "ended_at": None, "result": "pending", "exit_code": None, "detail": ""}
                         for d in self.disruptions}
        self._snapshots = {d.spec: {} for d in self.disruptions}
        self.greenlets = [gevent.spawn_later(d.at, self._run, d) for d in self.disruptions]
        self.greenlets += [gevent.spawn_later(max(0.0, d.at - latency_windows.WINDOW), self._snapshot, d, "before")
                           for d in self.disruptions]
        for d in self.disruptions:
            log.info("disrupt %s scheduled at %gs from the start", d.name, d.at)

    def cancel(self) -> list[dict[str, Any]]:
        """test_stop: stop what has not run (or is running) and return the records."""
        for greenlet in self.greenlets:
            greenlet.kill(block=True, timeout=15)
        self.greenlets = []
        for record in self._records.values():
            if record["result"] in ("pending", "running"):
                record["result"] = "cancelled"
                record["detail"] = record["detail"] or "the run ended first"
                if record["started_at"] is not None and record["ended_at"] is None:
                    record["ended_at"] = time.time()
        for d in self.disruptions:  # the run ended inside a window: the window ends here
            taken = self._snapshots.get(d.spec, {})
            if "start" in taken:
                for point in ("end", "after"):
                    if point not in taken:
                        self._snapshot(d, point)
            self._keep_latency(d)
        return self.records()

    def on_request(self, exception: Any = None, **_: Any) -> None:
        """Locust's request event (this process's users): count the failures a disruption explains."""
        if exception is None:
            return
        now = time.time()
        for record in self._records.values():
            start, end = record["started_at"], record["ended_at"]
            if start is not None and start <= now and (end is None or now <= end + EXCUSE_AFTER):
                self.failures_during += 1
                return

    def on_worker_report(self, data: dict[str, Any], slack: float = REPORT_SLACK) -> None:
        """Locust's worker_report event (a master): the failures a worker's report carries happened in
        the `slack` seconds before it came, so a report within that of a disruption's window counts them."""
        failures = (data.get("stats_total") or {}).get("num_failures") or 0
        if not isinstance(failures, int) or failures <= 0:
            return
        now = time.time()
        for record in self._records.values():
            start, end = record["started_at"], record["ended_at"]
            if start is not None and start <= now and (end is None or now - slack <= end + EXCUSE_AFTER):
                self.failures_during += failures
                return

    def records(self) -> list[dict[str, Any]]:
        return [dict(record) for record in self._records.values()]

    def _status(self, d: Disruption, text: str) -> None:
        self.last_status = f"disrupt {d.name}: {text}"
        log.info("progress %s", self.last_status)

    def _snapshot(self, d: Disruption, point: str) -> None:
        if self.targets.latency is not None:
            self._snapshots.setdefault(d.spec, {})[point] = self.targets.latency()

    def _keep_latency(self, d: Disruption) -> None:
        """`latency_ms` of the record: deliver p50/p95 before, during and after (checks.recovery reports it)."""
        if self.targets.latency is not None:
            self._records[d.spec]["latency_ms"] = latency_windows.phases(self._snapshots.get(d.spec, {}))

    def _after(self, d: Disruption) -> None:
        gevent.sleep(latency_windows.WINDOW)
        self._snapshot(d, "after")
        self._keep_latency(d)

    def _run(self, d: Disruption) -> None:
        record = self._records[d.spec]
        self._snapshot(d, "start")
        record.update(started_at=time.time(), result="running")
        self._status(d, "started" + (f" ({d.command})" if d.command else ""))
        try:
            record.update(self._act(d, record))
        except gevent.GreenletExit:
            raise
        except Exception as error:  # a disruption that failed is reported, never crashes the run
            record.update(result="failed", detail=f"{type(error).__name__}: {error}")
        record["ended_at"] = time.time()
        self._snapshot(d, "end")
        self.greenlets.append(gevent.spawn(self._after, d))
        self._status(d, f"{record['result']} ({record['detail']})" if record["detail"] else record["result"])

    def _act(self, d: Disruption, record: dict[str, Any]) -> dict[str, Any]:
        if d.action == "run":
            code = run_command(d.command, f"disrupt {d.name}:", RUN_TIMEOUT)
            if code is None:
                return {"result": "failed", "detail": f"killed after {RUN_TIMEOUT:g}s"}
            return {"result": "done" if code == 0 else "failed", "exit_code": code, "detail": f"exit {code}"}
        if d.action == "restart":
            assert self.targets.restart is not None
            started = time.monotonic()
            self.targets.restart()
            return {"result": "done", "detail": f"back in {time.monotonic() - started:.1f}s"}
        assert self.targets.proxy is not None
        if d.action == "cut":
            self.targets.proxy.cut()
            return {"result": "done", "detail": "every connection cut"}
        self.targets.proxy.toggle_pause()  # pause: forwarding stops ...
        try:
            gevent.sleep(d.seconds)
        finally:  # ... and resumes, even when the run ends first
            self.targets.proxy.toggle_pause()
            record["ended_at"] = time.time()
        return {"result": "done", "detail": f"paused {d.seconds:g}s"}


def run_command(command: str, prefix: str, timeout: float) -> int | None:
    """Run `command` through the shell, each output line logged after `prefix`; its exit code,
    or None when it outlived `timeout` (then its whole process group is killed)."""
    process = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert process.stdout is not None
    try:
        with gevent.Timeout(timeout):
            for line in process.stdout:
                log.info("%s %s", prefix, line.rstrip("\n"))
            return process.wait()
    except gevent.Timeout:
        return None
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.wait()
