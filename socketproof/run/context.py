"""One Socketproof context per Locust environment: the one owner of what a run keeps.

Built at init (socketproof.run.plugin), reached with `RunContext.of(environment)` by the users,
the capacity shape and the web UI. Its per-run parts (the deployment, the run state) are
forgotten at each test_start and built again on first use from that run's options, since the
web UI's start form may have changed them.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from socketproof.run.secret_options import StartupSecrets
from socketproof.run.start_guard import StartupTarget
from socketproof.run.state import RunState, process_id
from socketproof.target.deployment import Deployment, build

log = logging.getLogger("socketproof")

ATTRIBUTE = "socketproof"
"""The one attribute Socketproof sets on Locust's Environment."""


class RunContext:
    """What Socketproof keeps for one environment (a process: local, master or worker)."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.checker: Any = None
        """socketproof.verdicts.run_checker.RunChecker, made at init."""
        self.startup = StartupSecrets({})
        """Secrets as given at start-up (empty on a worker: it gets the master's with its options)."""
        self.start_target = StartupTarget(frozenset())
        """Where start-up credentials may go (socketproof.run.start_guard)."""
        self.proxy: Any = None
        """The run's fault proxy (socketproof.proxy.locust_run.RunProxy), with --proxy-faults."""
        self.progress: Any = None
        """The headless progress line's greenlet, while a run goes."""
        self.disrupt: list[Any] = []
        """The run's --disrupt (socketproof.run.disruptions.Disruption), parsed at init (master or local)."""
        self.schedule: Any = None
        """socketproof.run.disruptions.Schedule: this run's disruptions, from test_start to test_stop."""
        self._deployment: Deployment | None = None
        self._warned: list[str] = []
        """The deployment warnings last said: a headless run prepares at init and again at
        test_start with the same options, and should say them once."""
        self._state: RunState | None = None

    @classmethod
    def of(cls, environment: Any) -> RunContext:
        found = getattr(environment, ATTRIBUTE, None)
        if found is None:
            found = cls(environment)
            setattr(environment, ATTRIBUTE, found)
        return found

    def new_run(self) -> None:
        """test_start: the next deployment() and state() are built from this run's options."""
        self._deployment = None
        self._state = None

    def deployment(self) -> Deployment:
        """TLS, handshake extras and the token source of this run (DeploymentError names a bad option)."""
        if self._deployment is None:
            self._deployment = build(self.environment.parsed_options, os.environ)
        return self._deployment

    def prepare_deployment(self) -> Deployment:
        """Build the deployment again now and say its warnings (at init, and at each web UI start)."""
        self._deployment = None
        deployment = self.deployment()
        if deployment.warnings != self._warned:
            for warning in deployment.warnings:
                log.warning("%s", warning)
            self._warned = list(deployment.warnings)
        return deployment

    def state(self) -> RunState:
        """This process's run state (history, identities), made on first use."""
        if self._state is None:
            self._state = RunState.from_options(self.environment.parsed_options, process_id(self.environment))
        return self._state

    def current_state(self) -> RunState | None:
        """The run state if one was made (None on a master, which runs no users)."""
        return self._state

    def secret_values(self) -> list[str]:
        """Every secret value this process knows of, longest first, for redaction."""
        extra = self._deployment.secret_values() if self._deployment is not None else []
        return sorted({*self.startup.values(self.environment.parsed_options), *(v for v in extra if len(v) >= 4)},
                      key=len, reverse=True)
