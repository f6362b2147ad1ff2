"""The fault matrix: run core test files against a server with one fault switch on.

Each run is `python -m pytest <files>` in a subprocess with SOCKETPROOF_FAULTS set (the
core tests' conftest passes it to every embedded server); the junit XML says which tests
failed. `LAST` keeps the latest matrix for the terminal summary (tests/unified/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORE = "tests/unified/websocket/"
RUN_TIMEOUT = 120.0
WORKERS = 2  # this machine has two cores
NO_FAULT = "(none)"
QUIET_PLUGINS = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:locust"]
"""Plugins the core tests do not use; hypothesis alone costs ~1.5 s per run at session end."""

ALL_FILES = [
    f"{CORE}test_basic_connection.py",
    f"{CORE}test_basic_messaging.py",
    f"{CORE}test_auth_validation.py",
    f"{CORE}test_connection_cleanup.py",
    f"{CORE}test_basic_error_handling.py",
    f"{CORE}test_message_queue_basic.py",
    f"{CORE}test_concurrent_connections.py",
    f"{CORE}test_heartbeat_basic.py",
    f"{CORE}test_message_ordering.py",
    f"{CORE}test_state_sync.py",
]

_DELIVERY_FILES = [
    f"{CORE}test_basic_messaging.py",
    f"{CORE}test_concurrent_connections.py",
    f"{CORE}test_message_ordering.py",
]
_DELIVERY_TESTS = [
    "test_basic_messaging.py::test_json_client_to_server_ack_and_server_to_client",
    "test_concurrent_connections.py::test_every_tab_gets_every_message_with_the_same_seq",
    "test_message_ordering.py::test_fifo_per_sender_and_seq_plus_one",
    "test_message_ordering.py::test_seqs_are_per_user",
    "test_message_ordering.py::test_concurrent_senders_give_every_tab_the_same_order",
]
_REPLAY_FILES = [f"{CORE}test_message_queue_basic.py", f"{CORE}test_message_ordering.py"]
_REPLAY_TESTS = [
    "test_message_queue_basic.py::test_offline_messages_are_queued_and_flushed_in_order",
    "test_message_queue_basic.py::test_last_seq_resume_replays_exactly_what_was_missed",
    "test_message_queue_basic.py::test_full_queue_refuses_the_sender_with_queue_full",
    "test_message_ordering.py::test_resume_mid_stream_keeps_one_order",
]
"""Tests with a resume replay of two messages or more: the replay_* switches touch nothing else."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault switch, the core files that are about it, and the tests that must fail (200+ messages
    where the fault is random, so detection is certain, not likely)."""

    switch: str
    files: list[str]
    must_fail: list[str]


FAULTS = [
    Fault("drop=0.2", _DELIVERY_FILES, _DELIVERY_TESTS),
    Fault("duplicate=0.2", _DELIVERY_FILES, _DELIVERY_TESTS),
    Fault("reorder=0.2", _DELIVERY_FILES, _DELIVERY_TESTS),
    Fault(
        "leak_connections",
        [f"{CORE}test_connection_cleanup.py"],
        [
            "test_connection_cleanup.py::test_clean_close_returns_to_baseline",
            "test_connection_cleanup.py::test_abrupt_drop_returns_to_baseline",
            "test_connection_cleanup.py::test_many_open_close_cycles_leave_no_growth",
        ],
    ),
    Fault(
        "skip_heartbeat",
        [f"{CORE}test_heartbeat_basic.py"],
        [
            "test_heartbeat_basic.py::test_pings_arrive_at_the_configured_interval",
            "test_heartbeat_basic.py::test_silent_client_is_closed_with_1008_and_counted",
            "test_heartbeat_basic.py::test_client_that_stops_answering_is_closed_and_its_other_tab_is_not",
            "test_heartbeat_basic.py::test_interval_is_configurable",
        ],
    ),
    Fault(
        "accept_expired_tokens",
        [f"{CORE}test_auth_validation.py"],
        [
            "test_auth_validation.py::test_bad_token_is_rejected[expired]",
            "test_auth_validation.py::test_refused_refresh_keeps_the_connection[expired]",
            "test_auth_validation.py::test_expiry_closes_with_4001",
        ],
    ),
    Fault(
        "accept_any_signature",
        [f"{CORE}test_auth_validation.py"],
        [
            "test_auth_validation.py::test_bad_token_is_rejected[bad-signature]",
            "test_auth_validation.py::test_bad_token_is_rejected[alg-none]",
            "test_auth_validation.py::test_refused_refresh_keeps_the_connection[bad-signature]",
            "test_auth_validation.py::test_refused_refresh_keeps_the_connection[alg-none]",
        ],
    ),
    Fault(
        "no_queue_expiry",
        [f"{CORE}test_message_queue_basic.py"],
        ["test_message_queue_basic.py::test_expired_messages_are_not_delivered_and_are_counted"],
    ),
    Fault(
        "queue_unbounded",
        [f"{CORE}test_message_queue_basic.py"],
        ["test_message_queue_basic.py::test_full_queue_refuses_the_sender_with_queue_full"],
    ),
    Fault("replay_reorder", _REPLAY_FILES, _REPLAY_TESTS),
    Fault("replay_drop", _REPLAY_FILES, _REPLAY_TESTS),
    Fault("replay_duplicate", _REPLAY_FILES, _REPLAY_TESTS),
    Fault(
        "stale_snapshot",
        [f"{CORE}test_state_sync.py"],
        [
            "test_state_sync.py::test_snapshot_on_connect",
            "test_state_sync.py::test_full_resync_after_reconnect",
        ],
    ),
]


@dataclasses.dataclass
class Run:
    """One pytest subprocess: its exit code and each test's outcome."""

    fault: str
    files: list[str]
    returncode: int | None = None  # None: it timed out
    seconds: float = 0.0
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    output: str = ""

    @property
    def failed(self) -> list[str]:
        return sorted(name for name, outcome in self.outcomes.items() if outcome in ("failed", "error"))

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return {
            "files": [name.removeprefix(CORE) for name in self.files],
            "exit_code": self.returncode,
            "seconds": round(self.seconds, 2),
            "counts": counts,
            "failed": self.failed,
        }


def _outcomes(xml_path: Path) -> dict[str, str]:
    """junit XML -> {"test_file.py::test_name[param]": passed|failed|error|skipped}."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}.py::{case.get('name')}"
        children = {child.tag for child in case}
        if "failure" in children:
            outcome = "failed"
        elif "error" in children:
            outcome = "error"
        elif "skipped" in children:
            outcome = "skipped"
        else:
            outcome = "passed"
        if outcomes.get(name) in (None, "passed", "skipped"):  # a teardown error adds a second entry
            outcomes[name] = outcome
    return outcomes


def run(fault: str, files: list[str], workdir: Path) -> Run:
    """Run `files` against servers with `fault` on (NO_FAULT: none) and collect the outcomes."""
    slug = fault.replace("=", "-").strip("()")
    xml_path = workdir / f"{slug}.xml"
    env = {
        key: value for key, value in os.environ.items() if key not in ("SOCKETPROOF_TARGET_URL", "SOCKETPROOF_FAULTS")
    }
    if fault != NO_FAULT:
        env["SOCKETPROOF_FAULTS"] = fault
    env["SOCKETPROOF_METRICS_OUT"] = str(workdir / f"{slug}-metrics.json")
    command = [sys.executable, "-m", "pytest", *files, "-q", f"--junitxml={xml_path}", *QUIET_PLUGINS]
    result = Run(fault, files)
    t0 = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        result.returncode, result.output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        result.output = f"timed out after {RUN_TIMEOUT}s\n{expired.stdout or ''}"
    result.seconds = time.monotonic() - t0
    if xml_path.exists():
        result.outcomes = _outcomes(xml_path)
    return result


def run_matrix(workdir: Path, clean: Run | None = None) -> dict[str, Run]:
    """The clean run (unless given) and one run per fault, WORKERS at a time, longest first."""
    jobs = [] if clean is not None else [(NO_FAULT, ALL_FILES)]
    jobs += [(fault.switch, fault.files) for fault in FAULTS]
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {name: pool.submit(run, name, files, workdir) for name, files in jobs}
        runs = {name: future.result() for name, future in futures.items()}
    return runs if clean is None else {NO_FAULT: clean, **runs}


class SessionCore:
    """Outcomes of the core tests run earlier in this very session (the fault matrix runs last),
    so a full `pytest tests/unified` need not run the clean suite a second time."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.seconds = 0.0

    def record(self, nodeid: str, when: str, outcome: str, duration: float) -> None:
        name = nodeid.split(CORE, 1)[-1]
        self.seconds += duration
        if outcome == "failed":
            outcome = "failed" if when == "call" else "error"
        if self.outcomes.get(name) in (None, "passed"):  # the first phase that did not pass decides
            self.outcomes[name] = outcome

    def as_clean_run(self) -> Run | None:
        """A Run when every core file ran here against the embedded server with no fault, else None."""
        if os.environ.get("SOCKETPROOF_TARGET_URL") or os.environ.get("SOCKETPROOF_FAULTS"):
            return None
        files_seen = {name.split("::", 1)[0] for name in self.outcomes}
        if not all(Path(f).name in files_seen for f in ALL_FILES):
            return None
        result = Run(NO_FAULT, ALL_FILES, seconds=self.seconds, outcomes=dict(self.outcomes))
        result.returncode = 1 if result.failed else 0
        result.output = "reused: the core tests of this pytest session"
        return result


SESSION = SessionCore()


def report(runs: dict[str, Run], seconds: float) -> dict[str, Any]:
    must = {fault.switch: fault.must_fail for fault in FAULTS}
    return {
        "wall_seconds": round(seconds, 2),
        "clean_run": runs[NO_FAULT].output if runs[NO_FAULT].output.startswith("reused") else "subprocess",
        "runs": {
            name: {
                **result.summary(),
                "must_fail": must.get(name, []),
                "caught": name != NO_FAULT and result.returncode == 1 and set(must[name]) <= set(result.failed),
            }
            for name, result in runs.items()
        },
    }


def write(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def lines(data: dict[str, Any]) -> list[str]:
    """fault -> caught?, exit code, seconds, and the tests that failed."""
    out = [f"fault matrix ({data['wall_seconds']} s wall, {WORKERS} runs at a time; clean run: {data['clean_run']})"]
    for name, entry in data["runs"].items():
        if name == NO_FAULT:
            verdict = "passes" if entry["exit_code"] == 0 else "FAILS"
        else:
            verdict = "caught" if entry["caught"] else "NOT CAUGHT"
        out.append(f"{name:<24} {verdict:<11} exit={entry['exit_code']} {entry['seconds']:>6.1f}s {entry['counts']}")
        for test in entry["failed"]:
            mark = "*" if test in entry["must_fail"] else " "
            out.append(f"    {mark} {test}")
    out.append("(* = a test that must fail for this fault)")
    return out


LAST: dict[str, Any] | None = None
