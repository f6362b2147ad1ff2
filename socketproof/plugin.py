"""Wires Socketproof into Locust: options, validation, the embedded target, the run state.

Importing this module (every locustfile does, through socketproof.users) registers the
listeners once; Python's import cache keeps it from happening twice.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from socketproof import embedded
from socketproof.options import LoadOptions, add_arguments, exit_on_bad_options, load_options
from socketproof.run import RunState

log = logging.getLogger("socketproof")

_STATE_KEY = "socketproof_run_state"


def process_id(environment: Any) -> str:
    """`w<index>` on a worker, `p0` on a local runner: makes identities unique per process."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return f"w{runner.worker_index}"
    return "p0"


def run_state(environment: Any) -> RunState:
    """The process's RunState, created on first use (workers get options from the master)."""
    state = getattr(environment, _STATE_KEY, None)
    if state is None:
        try:
            options = load_options(environment.parsed_options)
        except ValueError:
            options = LoadOptions()
        state = RunState(options, process_id(environment))
        setattr(environment, _STATE_KEY, state)
    return state


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = exit_on_bad_options(environment.parsed_options)
    if not isinstance(environment.runner, WorkerRunner):
        embedded.start_if_no_host(environment, options.jwt_secret)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """A new run (also after a stop in the web UI): fresh options and a fresh history."""
    if isinstance(environment.runner, MasterRunner):
        return
    if hasattr(environment, _STATE_KEY):
        delattr(environment, _STATE_KEY)
    run_state(environment)
