"""The custom-adapter example (docs/examples/json_chat_adapter.py) on a server nobody here wrote
the WebSocket layer of (apps/json_chat_server.py, on the `websockets` library).

A clean run passes ordering, duplicates, loss, heartbeat (from WebSocket pings alone) and
cleanup (from a Prometheus endpoint); state is UNKNOWN with its reason; each test switch of
the server fails the check made for it, with evidence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.json_chat_server import chat_server
from tests.socketproof.support import LocustRun, RunPool, run_locust

ADAPTER = "docs/examples/json_chat_adapter.py:JsonChatAdapter"
RUN = ["-u", "10", "-r", "10", "-t", "8s", "--protocol", ADAPTER]


def metrics(url: str) -> str:
    return url.replace("ws://", "http://") + "/metrics#chat_connections"


def start(pool: RunPool, name: str, url: str, *extra: str) -> None:
    pool.start(name, [*RUN, "--host", url, *extra], {})


def verdict(run: LocustRun, check: str) -> object:
    return run.verdicts[check]["valid"]


def test_a_clean_run_of_a_foreign_server_passes_what_it_can_prove(locust_runs: RunPool) -> None:
    with chat_server() as url:
        start(locust_runs, "json-clean", url, "--server-connections", metrics(url))
        run = locust_runs.result("json-clean")
    assert run.returncode == 0, run.describe()
    for check in ("ordering", "duplicates", "loss", "cleanup", "heartbeat"):
        assert verdict(run, check) is True, (check, run.describe())
    state = run.verdicts["state"]
    assert state["valid"] == "unknown" and "no versioned state" in state["stats"]["reason"], state
    stats = run.stats
    assert stats["echo"]["num_requests"] > 0 and stats["echo"]["total_response_time"] > 0
    assert stats["deliver"]["num_requests"] > 0
    assert "flow StateSyncUser left out: the json-chat adapter has no versioned_state" in run.stderr


@pytest.mark.parametrize(
    ("fault", "check", "kind"),
    [("drop=0.2", "loss", "lost"), ("duplicate=0.2", "duplicates", "duplicate_stamp"),
     ("reorder=0.3", "ordering", "fifo"), ("leak", "cleanup", "leak")],
)
def test_each_server_bug_fails_its_check_with_evidence(locust_runs: RunPool, fault: str, check: str,
                                                       kind: str) -> None:
    with chat_server("--fault", fault, "--seed", "7") as url:
        start(locust_runs, f"json-{fault}", url, "--server-connections", metrics(url))
        run = locust_runs.result(f"json-{fault}")
    assert run.returncode == 1, run.describe()
    assert verdict(run, check) is False and kind in run.anomaly_kinds(check), run.failing()
    evidence = next(a for a in run.verdicts[check]["anomalies"] if a["kind"] == kind)["evidence"]
    assert evidence, evidence


def test_without_pings_or_a_count_the_checks_say_unknown_and_strict_fails(tmp_path: Path) -> None:
    with chat_server("--ping-interval", "0") as url:
        run = run_locust([*RUN, "--host", url, "--strict"], tmp_path)
    assert run.returncode == 1, run.describe()
    assert run.verdicts["heartbeat"]["valid"] == "unknown", run.verdicts["heartbeat"]
    cleanup = run.verdicts["cleanup"]
    assert cleanup["valid"] == "unknown" and "--server-connections" in cleanup["stats"]["reason"], cleanup
    for check in ("ordering", "duplicates", "loss"):
        assert verdict(run, check) is True, (check, run.failing())


@pytest.mark.parametrize(
    ("protocol", "message"),
    [("nope", "--protocol 'nope' is not an adapter"),
     ("docs/examples/missing.py:X", "no Python file at"),
     ("docs/examples/json_chat_adapter.py:Nope", "has no class 'Nope'")],
)
def test_a_bad_protocol_is_one_line_and_exit_2(tmp_path: Path, protocol: str, message: str) -> None:
    run = run_locust(["-u", "1", "-t", "2s", "--protocol", protocol, "--host", "ws://127.0.0.1:9"], tmp_path)
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert len(errors) == 1 and message in errors[0], run.stderr
    assert "Traceback" not in run.stderr


def test_another_protocol_without_a_host_says_the_embedded_server_cannot_serve_it(tmp_path: Path) -> None:
    run = run_locust(["-u", "1", "-t", "2s", "--protocol", ADAPTER], tmp_path)
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert errors == [f"locust: error: --protocol {ADAPTER} needs --host: the embedded reference server speaks "
                      "only the socketproof protocol"], run.stderr
    assert "started the embedded reference server" not in run.stderr
