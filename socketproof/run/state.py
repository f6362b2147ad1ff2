"""What one Locust process shares between its users during a run, and who owns it.

socketproof.run.context is the one owner: the process's RunState is made on first use and
replaced at each test start (`RunContext.of(environment).state()`). It holds the validated
options, the adapter, the history recorder (handed checks.fold.fold, so closed connections
beyond its keep cap are folded with their evidence), the pool of identities, which identities
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

from checks.fold import fold
from client.adapter import Adapter
from client.recorder import Recorder
from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import LoadOptions, OptionError, load_options

log = logging.getLogger("socketproof")



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
        self.recorder = Recorder(process, adapter=adapter.name, capabilities=frozenset(adapter.capabilities),
                                 fold=fold)
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
    def from_options(cls, parsed: Any, process: str) -> RunState:
        """From the run's parsed options (workers get them from the master); bad ones: defaults, said."""
        try:
            options = load_options(parsed)
            adapter = build_run_adapter(parsed, options)
        except (OptionError, ValueError) as error:
            log.error("%s; using defaults", error)
            options = LoadOptions()
            adapter = build_run_adapter(None, options)
        return cls(options, process, adapter)

    def identity(self, flow: str) -> str:
        """The next identity of a flow's pool: `<flow>-<process>-<n mod identities>`."""
        n = next(self._numbers[flow]) % self.options.identities
        return f"{flow}-{self.process_id}-{n}"

    def label(self, identity: str) -> str:
        """A connection label unique in the run: the stamps' sender."""
        return f"{identity}#{next(self._labels)}{self.process_tag}"

    def is_local(self, sender: str) -> bool:
        return sender.endswith(self.process_tag)
