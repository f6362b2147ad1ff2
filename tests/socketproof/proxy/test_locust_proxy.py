"""`locust --headless --proxy-faults SPEC`: the proxy's faults make the matching check fail.

Real Locust runs (tests/socketproof/support.py: at most two at once) against the embedded
reference server with no fault switch of its own: every fault comes from the proxy. A clean
run through the proxy passes like a direct one; each fault fails its check, and the counts in
proxy-faults.json are consistent with the anomalies found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.socketproof.support import LocustRun, RunPool, run_locust

RUN = ["-u", "10", "-r", "10", "-t", "9s", "--proxy-seed", "1"]
SINK_LOCUSTFILE = Path(__file__).with_name("sink_locustfile.py")

# (name, --proxy-faults, extra locust arguments, the check that must fail, an anomaly kind it must name:
# one of several, `|` between them)
RUNS = [
    ("clean", "none", [], None, None),
    ("drop", "down:drop=0.2", [], "loss", "lost"),
    ("duplicate", "down:duplicate=0.2", [], "duplicates", "duplicate_seq"),
    # A swap shows only between two deliveries to one connection, and deliveries are about a fifth
    # of what a connection gets in the default mix (replies, acks): on a starved machine 122 swaps
    # once fell on none. Senders that publish only to one listener (sink_locustfile.py) make every
    # swap on its connection two deliveries.
    ("reorder", "down:reorder=0.2", ["-f", str(SINK_LOCUSTFILE), "-t", "12s"], "ordering",
     "out_of_order|fifo"),
    ("delay", "down:delay_ms=100+20", ["--threshold", "echo:p95<50"], "timing", "threshold"),
    ("freeze", "freeze_pings", [], "heartbeat", "no_pings"),
]


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    for name, spec, extra, _, _ in RUNS:
        locust_runs.start(f"proxy-{name}", [*RUN, "--proxy-faults", spec, *extra])
    return locust_runs


def proxy_counts(run: LocustRun) -> dict[str, Any]:
    path = run.report_dir / "proxy-faults.json"
    assert path.exists(), f"no proxy-faults.json\n{run.describe()}"
    return json.loads(path.read_text())


def test_a_clean_run_through_the_proxy_passes(runs: RunPool) -> None:
    run = runs.result("proxy-clean")
    assert run.returncode == 0 and not run.failing(), run.describe()
    assert {verdict["valid"] for verdict in run.verdicts.values()} == {True}
    counts = proxy_counts(run)
    assert counts["faults"] == {} and counts["connections"] >= 10
    assert counts["relayed"]["up:messages"] > 50 and counts["relayed"]["down:messages"] > 50
    assert "proxy faults (none): nothing injected; relayed" in run.stdout + run.stderr
    assert not run.leftovers


@pytest.mark.parametrize(("name", "spec", "check", "kind"), [row[:2] + row[3:] for row in RUNS[1:]])
def test_each_proxy_fault_fails_its_check(runs: RunPool, name: str, spec: str, check: str, kind: str) -> None:
    run = runs.result(f"proxy-{name}")
    assert run.returncode == 1, run.describe()
    kinds = kind.split("|")  # a swap shows as a seq out of order, or a sender's stamps out of order
    assert run.verdicts[check]["valid"] is False and set(kinds) & run.anomaly_kinds(check), run.describe()
    counts = proxy_counts(run)
    injected = sum(counts["faults"].values())
    assert injected > 0 and counts["spec"] == spec
    anomalies = [a for a in run.verdicts[check]["anomalies"] if a["kind"] in kinds]
    if name in ("drop", "duplicate", "reorder"):
        # every missing, repeated or late delivery the check found is one the proxy injected (per
        # kind: one swap can show both as a seq out of order and as a sender's stamps out of order)
        found = {k: sum(affected(a) for a in anomalies if a["kind"] == k) for k in kinds}
        assert 0 < max(found.values()) and all(n <= counts["faults"][f"down:{name}"] for n in found.values()), \
            (found, counts["faults"])
    if name == "drop":  # a message missing from both views (stamp and seq) is counted once
        lost = run.verdicts["loss"]["stats"]["lost"]
        assert 0 < lost <= counts["faults"]["down:drop"], (lost, counts["faults"])
    if name == "freeze":
        assert counts["faults"].get("down:freeze_pings", 0) > 0, counts["faults"]
    assert not run.leftovers


def affected(anomaly: dict[str, Any]) -> int:
    """How many deliveries one anomaly names (missing seqs, repeated seqs, late messages)."""
    evidence = anomaly.get("evidence", {})
    return int(evidence.get("missing_count") or evidence.get("count") or 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy-faults", "drop=2"],
         "locust: error: --proxy-faults: probability in 'drop=2' must be between 0 and 1"),
        (["--proxy-faults", "drop=0.1", "--host", "wss://127.0.0.1:9"],
         "locust: error: --proxy-faults: upstream must be a ws://host:port URL (wss is not supported)"),
    ],
)
def test_bad_proxy_options_end_the_run_with_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    run = run_locust([*args, "-t", "5s", "-u", "1"], tmp_path / "bad", timeout=60)
    assert run.returncode == 2, run.describe()
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not run.leftovers
