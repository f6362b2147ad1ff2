"""What one Locust process shares between its users during a run, and who owns it.

`RunState.of(environment)` is the one owner: the process's RunState lives on the Locust
environment, made on first use and replaced at each test start. It holds the validated
options, the adapter, the history recorder, the pool of identities, which identities
are live here (so chat users publish to peers that can receive), and the stamp counters.
The plugin, the users and the capacity shape all import it from here.
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
import secrets
from typing import Any

from locust.runners import WorkerRunner

from client.adapter import Adapter
from client.recorder import Recorder
from socketproof.options import LoadOptions, OptionError, build_run_adapter, load_options

log = logging.getLogger("socketproof")

_STATE_KEY = "socketproof_run_state"


def process_id(environment: Any) -> str:
    """`w<index>` on a worker, `p0` on a local runner: makes identities unique per process."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return f"w{runner.worker_index}"
    return "p0"


class LiveIdentities:
    """Channels some open connection in this process receives (a user, a room), to pick
    message peers from."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._names: list[str] = []

    def add(self, identity: str) -> None:
        self._counts[identity] += 1
        if self._counts[identity] == 1:
            self._names.append(identity)

    def remove(self, identity: str) -> None:
        if self._counts[identity] <= 0:
            return
        self._counts[identity] -= 1
        if self._counts[identity] == 0:
            del self._counts[identity]
            self._names.remove(identity)

    def pick(self, rng: random.Random, default: str) -> str:
        return rng.choice(self._names) if self._names else default


class RunState:
    """Per-process state of a Socketproof run."""

    def __init__(self, options: LoadOptions, process: str, adapter: Adapter) -> None:
        self.options = options
        self.process_id = process
        self.adapter = adapter
        self.recorder = Recorder(process, adapter=adapter.name, capabilities=frozenset(adapter.capabilities))
        self.live = LiveIdentities()
        self.stopping = False
        """Set at the end of a run: users stop sending so in-flight messages can land."""
        self.process_tag = f"@{process}.{secrets.token_hex(3)}"
        """Ends every connection label made here (the process and a random run tag): a stamp whose
        sender ends with it was sent by this process in this run, on this clock, so its delivery
        time can be measured; and a server that replays an earlier run's messages never
        makes them look like this run's."""
        self._numbers: dict[str, itertools.count[int]] = collections.defaultdict(itertools.count)
        self._labels = itertools.count(1)

    @classmethod
    def of(cls, environment: Any) -> RunState:
        """The process's RunState, made on first use (workers get options from the master)."""
        state = getattr(environment, _STATE_KEY, None)
        if state is None:
            parsed = environment.parsed_options
            try:
                options = load_options(parsed)
                adapter = build_run_adapter(parsed, options)
            except (OptionError, ValueError) as error:
                log.error("%s; using defaults", error)
                options = LoadOptions()
                adapter = build_run_adapter(None, options)
            state = cls(options, process_id(environment), adapter)
            setattr(environment, _STATE_KEY, state)
        return state

    @staticmethod
    def forget(environment: Any) -> None:
        """A new run starts: the next `of()` builds a fresh state (options, history)."""
        if hasattr(environment, _STATE_KEY):
            delattr(environment, _STATE_KEY)

    @staticmethod
    def current(environment: Any) -> RunState | None:
        """The state if one was made (None on a master, which runs no users)."""
        return getattr(environment, _STATE_KEY, None)

    def identity(self, flow: str) -> str:
        """The next identity of a flow's pool: `<flow>-<process>-<n mod identities>`."""
        n = next(self._numbers[flow]) % self.options.identities
        return f"{flow}-{self.process_id}-{n}"

    def label(self, identity: str) -> str:
        """A connection label unique in the run: the stamps' sender."""
        return f"{identity}#{next(self._labels)}{self.process_tag}"

    def is_local(self, sender: str) -> bool:
        return sender.endswith(self.process_tag)
