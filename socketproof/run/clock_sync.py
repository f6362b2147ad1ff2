"""Measure each worker's clock against the master's over Locust's own worker channel, and tell
every worker all the offsets, so a delivery between two workers is timed on one clock.

The master (MasterClock), from each test start until its stop, runs rounds: PINGS_PER_ROUND
pings to every worker, then the table of offsets ({process tag: [offset, uncertainty]},
socketproof.run.clock.estimate over the last two rounds) to all of them. The first round comes
at once and one every ROUND_EVERY s after, so a drifting clock is caught. A worker
(WorkerClock) answers each ping with its clock and its process tag, and keeps the last table
for its users (socketproof.run.users reads `offsets(environment)`).
"""

from __future__ import annotations

import collections
import weakref
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from socketproof.run import clock
from socketproof.run.clock import Estimate, Offsets, Sample
from socketproof.run.context import RunContext

PING = "socketproof_clock_ping"
PONG = "socketproof_clock_pong"
OFFSETS = "socketproof_clock_offsets"
FIRST_ROUND_AFTER = 0.5
"""After test start: workers have made this run's state (its process tag) by then."""
ROUND_EVERY = 5.0
PINGS_PER_ROUND = 8
PING_GAP = 0.02
REPLY_WAIT = 0.3
"""After a round's last ping, before the table goes out: loopback answers take a millisecond."""
WINDOW = 2 * PINGS_PER_ROUND
"""Samples kept per worker: the last two rounds, so an old sample cannot hide a drift."""
MAX_ROUNDS = 20_000
"""A bound on the loop (over a day of rounds); the run's stop ends it long before."""


class MasterClock:
    """The master's side: pings, the samples per worker, the table it sends, the run's figures."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.samples: dict[str, collections.deque[Sample]] = {}
        self.answers: collections.Counter[str] = collections.Counter()
        self.tags: dict[str, str] = {}
        self.worst = 0.0
        """The largest deliver uncertainty (two workers' together) any table of this run had."""
        self.greenlet: Any = None
        environment.runner.register_message(PONG, self._on_pong)

    def start(self) -> None:
        """Test start: this run's figures from scratch, rounds from now on."""
        self._kill()
        self.samples.clear()
        self.answers.clear()
        self.tags.clear()
        self.worst = 0.0
        self.greenlet = gevent.spawn(self._rounds)

    def stop(self) -> dict[str, Any]:
        """Test stop: no more rounds; what was measured (checks.json's `clock_offsets`)."""
        self._kill()
        return self.summary()

    def _kill(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
            self.greenlet = None

    def _rounds(self) -> None:
        gevent.sleep(FIRST_ROUND_AFTER)
        for _ in range(MAX_ROUNDS):
            self.round()
            gevent.sleep(ROUND_EVERY)

    def round(self) -> None:
        runner = self.environment.runner
        for _ in range(PINGS_PER_ROUND):
            for client in list(runner.clients.all):
                if client.state != "missing":
                    runner.send_message(PING, {"sent": clock.now()}, client_id=client.id)
            gevent.sleep(PING_GAP)
        gevent.sleep(REPLY_WAIT)
        self.broadcast()

    def _on_pong(self, environment: Any, msg: Any, **_: Any) -> None:
        received = clock.now()  # first: whatever runs before it widens the round trip
        data = msg.data if isinstance(msg.data, dict) else {}
        sent, remote, tag = data.get("sent"), data.get("remote"), data.get("tag")
        if not isinstance(sent, (int, float)) or not isinstance(remote, (int, float)):
            return
        window = self.samples.setdefault(msg.node_id, collections.deque(maxlen=WINDOW))
        window.append(Sample(float(sent), float(remote), received))
        self.answers[msg.node_id] += 1
        if isinstance(tag, str):
            self.tags[msg.node_id] = tag

    def estimates(self) -> dict[str, Estimate]:
        """By Locust client id, for every worker that answered."""
        found = {node: clock.estimate(window) for node, window in self.samples.items()}
        return {node: found_estimate for node, found_estimate in found.items() if found_estimate is not None}

    def broadcast(self) -> None:
        estimates = self.estimates()
        table = {self.tags[node]: [e.offset, e.uncertainty] for node, e in estimates.items() if node in self.tags}
        self.environment.runner.send_message(OFFSETS, {"offsets": table})
        self.worst = max(self.worst, pair_uncertainty([e.uncertainty for e in estimates.values()]))

    def worker_name(self, node: str) -> str:
        index = getattr(self.environment.runner, "worker_indexes", {}).get(node)
        return f"w{index}" if index is not None else node

    def summary(self) -> dict[str, Any]:
        """Per worker its offset and uncertainty (ms), the deliver uncertainty, and one line saying it."""
        estimates = self.estimates()
        workers = {
            self.worker_name(node): {"offset_ms": round(e.offset * 1000.0, 3),
                                     "uncertainty_ms": round(e.uncertainty * 1000.0, 3),
                                     "samples": self.answers[node]}
            for node, e in sorted(estimates.items(), key=lambda item: self.worker_name(item[0]))
        }
        unmeasured = sorted(self.worker_name(client.id) for client in self.environment.runner.clients.all
                            if client.id not in estimates)
        uncertainty = round(max(self.worst, pair_uncertainty([e.uncertainty for e in estimates.values()])) * 1000.0, 3)
        return {"workers": workers, "unmeasured": unmeasured, "deliver_uncertainty_ms": uncertainty,
                "note": note(workers, unmeasured, uncertainty)}


def pair_uncertainty(uncertainties: list[float]) -> float:
    """How wrong a delivery between two workers can be: both offsets' uncertainties, the worst pair."""
    return sum(sorted(uncertainties, reverse=True)[:2])


def note(workers: dict[str, dict[str, Any]], unmeasured: list[str], uncertainty_ms: float) -> str:
    """The console's line on cross-process `deliver`. It claims no corrected delivery: the master
    does not know whether any crossed processes (the default mix picks peers in-process)."""
    if not workers:
        return "deliver across processes left out: no worker's clock offset was measured"
    offsets = ", ".join(f"{name} {figures['offset_ms']:+.1f} ms" for name, figures in workers.items())
    line = (f"clock offsets measured ({offsets}): any deliver across processes is corrected by them, "
            f"+/- {uncertainty_ms:.1f} ms")
    if unmeasured:
        line += f"; left out for {', '.join(unmeasured)} (no offset measured)"
    return line


class WorkerClock:
    """A worker's side: answer pings with this clock, keep the master's last table."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.offsets = Offsets()
        environment.runner.register_message(PING, self._on_ping)
        environment.runner.register_message(OFFSETS, self._on_offsets)

    def _on_ping(self, environment: Any, msg: Any, **_: Any) -> None:
        remote = clock.now()
        sent = msg.data.get("sent") if isinstance(msg.data, dict) else None
        state = RunContext.of(self.environment).current_state()
        tag = state.process_tag if state is not None else None
        self.environment.runner.send_message(PONG, {"sent": sent, "remote": remote, "tag": tag})

    def _on_offsets(self, environment: Any, msg: Any, **_: Any) -> None:
        table = msg.data.get("offsets") if isinstance(msg.data, dict) else None
        if isinstance(table, dict):
            self.offsets.update(table)


_clocks: weakref.WeakKeyDictionary[Any, MasterClock | WorkerClock] = weakref.WeakKeyDictionary()
"""Per environment (one per process), made at init."""


def install(environment: Any) -> None:
    """Init: the master's or a worker's side (a local runner needs none: one process, one clock)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _clocks[environment] = MasterClock(environment)
    elif isinstance(runner, WorkerRunner):
        _clocks[environment] = WorkerClock(environment)


def start(environment: Any) -> None:
    found = _clocks.get(environment)
    if isinstance(found, MasterClock):
        found.start()


def stop(environment: Any) -> dict[str, Any] | None:
    """The master's figures of the run (None elsewhere)."""
    found = _clocks.get(environment)
    return found.stop() if isinstance(found, MasterClock) else None


def offsets(environment: Any) -> Offsets:
    """The offsets a worker's users correct cross-process deliveries with (empty elsewhere)."""
    found = _clocks.get(environment)
    return found.offsets if isinstance(found, WorkerClock) else Offsets()
