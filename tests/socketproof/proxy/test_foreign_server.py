"""The fault proxy proves the checks on a server nobody on this team wrote: the `websockets`-library
JSON chat server (apps/json_chat_server.py, no fault switch on) behind
`--proxy-faults`, driven through the custom-adapter example. Each injected fault fails the
check made for it, and the injected counts are consistent with the anomalies.
"""

from __future__ import annotations

import json

import pytest

from apps.json_chat_server import chat_server
from tests.socketproof.support import LocustRun, RunPool
from tests.socketproof.test_custom_adapter_runs import ADAPTER

RUN = ["-u", "10", "-r", "10", "-t", "9s", "--protocol", ADAPTER, "--proxy-seed", "3"]

# (name, --proxy-faults, extra arguments, the check that must fail, an anomaly kind it must name)
RUNS = [
    ("drop", "down:drop=0.2", [], "loss", "lost"),
    ("duplicate", "down:duplicate=0.2", [], "duplicates", "duplicate_stamp"),
    ("reorder", "down:reorder=0.3", [], "ordering", "fifo"),
    ("delay", "down:delay_ms=100+20", ["--threshold", "echo:p95<50"], "timing", "threshold"),
    ("freeze", "freeze_pings", ["--heartbeat-interval", "1"], "heartbeat", "no_pings"),
]


def counts(run: LocustRun) -> dict:
    return json.loads((run.report_dir / "proxy-faults.json").read_text())


@pytest.mark.parametrize(("name", "spec", "extra", "check", "kind"), RUNS, ids=[r[0] for r in RUNS])
def test_a_proxy_fault_in_front_of_a_foreign_server_fails_its_check(
    locust_runs: RunPool, name: str, spec: str, extra: list[str], check: str, kind: str | None
) -> None:
    with chat_server() as url:
        locust_runs.start(f"foreign-{name}", [*RUN, "--host", url, "--proxy-faults", spec, *extra], {})
        run = locust_runs.result(f"foreign-{name}")
    assert run.returncode == 1, run.describe()
    assert run.verdicts[check]["valid"] is False, (check, run.failing(), run.describe())
    if kind is not None:
        assert kind in run.anomaly_kinds(check), run.failing()
    injected = counts(run)["faults"]
    assert injected, injected
    if name == "drop":
        lost = sum(a["evidence"].get("missing_count", 0) for a in run.verdicts["loss"]["anomalies"])
        dropped = sum(v for k, v in injected.items() if "drop" in k)
        assert 0 < lost <= dropped, (lost, injected)
