"""Headless Locust runs with --protocol graphql-ws against the real strawberry-graphql app.

The real runner, the real client and adapter, the app on a free loopback port as its own
process (apps/graphql_app.py); one run at a time. The app's fault switches prove
that each check can fail: the same run that passes on a clean app exits 1 on a faulty one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.graphql_app import METRIC_CONNECTIONS, AppHandle, running_app
from tests.socketproof.support import LocustRun, run_locust

SECRET = "graphql-run-secret-of-at-least-32-bytes"
USERS = "6"
RUN_TIME = "8s"


def graphql_run(app: AppHandle, report_dir: Path, *extra: str, secret: str = SECRET) -> LocustRun:
    return run_locust(
        ["-f", "locustfiles", "--protocol", "graphql-ws", "--host", app.url, "--jwt-secret", secret,
         "--server-connections", f"{app.metrics_url}#{METRIC_CONNECTIONS}",
         "-u", USERS, "-r", USERS, "-t", RUN_TIME, "--stop-timeout", "5", *extra],
        report_dir,
    )


def one_line_error(run: LocustRun) -> str:
    """A refused run: exit 2, one error line, no traceback, no user started."""
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, run.describe()
    assert "Traceback" not in run.stderr + run.stdout, run.describe()
    assert not (run.report_dir / "checks.json").exists(), "the run must stop before any user starts"
    assert not run.leftovers
    return errors[0]


def test_clean_run_passes_with_true_mutation_round_trips(tmp_path):
    with running_app(SECRET) as app:
        run = graphql_run(app, tmp_path / "clean")
        app.wait_metrics(timeout=10, graphql_connections=0, graphql_subscriptions=0)
    assert run.returncode == 0, run.describe()
    verdicts = run.verdicts
    for check in ("ordering", "duplicates", "loss", "cleanup"):
        assert verdicts[check]["valid"] is True, (check, verdicts[check], run.describe())
    publish = run.stats["publish"]
    assert publish["num_requests"] > 20 and publish["num_failures"] == 0, publish
    # a true round trip: subscribe -> complete over loopback takes time, never 0
    assert 0 < publish["total_response_time"] / publish["num_requests"] < 1000, publish
    assert not run.leftovers


@pytest.mark.parametrize(
    ("switch", "check"),
    [("--drop-every", "loss"), ("--duplicate-every", "duplicates"), ("--reorder-every", "ordering")],
)
def test_each_fault_switch_fails_its_check_with_evidence(switch, check, tmp_path):
    with running_app(SECRET, switch, "7") as app:
        run = graphql_run(app, tmp_path / check)
        faults = app.fault_counts()
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts[check]
    assert verdict["valid"] is False, (verdict, run.describe())
    assert verdict["anomalies"], verdict
    assert check in run.stdout and "FAIL" in run.stdout, run.describe()
    assert sum(faults.values()) > 0, faults  # the app really did it


def test_bad_auth_is_a_one_line_preflight_error(tmp_path):
    with running_app(SECRET) as app:
        run = graphql_run(app, tmp_path / "auth", secret="not-the-apps-secret-but-32-bytes-long")
    line = one_line_error(run)
    assert "forbidden (close 4403)" in line and "--jwt-secret" in line, line


def test_a_server_without_graphql_transport_ws_is_one_line(tmp_path):
    with running_app(SECRET, "--protocols", "graphql-ws") as legacy:
        run = graphql_run(legacy, tmp_path / "legacy")
    line = one_line_error(run)
    assert "graphql-transport-ws" in line, line


def test_an_echo_query_the_schema_lacks_is_one_line_naming_graphql_echo(tmp_path):
    """The pre-flight tries each operation the flows use once: a --graphql-echo the schema cannot
    answer would fail every echo of the run; here it is exit 2 before any user starts."""
    with running_app(SECRET) as app:
        run = graphql_run(app, tmp_path / "echo", "--graphql-echo",
                          "query($message: String!) { ping(message: $message) }")
    line = one_line_error(run)
    refused = "the server refused the pre-flight's echo (graphql_error: Cannot query field 'ping' on type 'Query'.)"
    assert refused in line, line
    assert line.endswith("check --graphql-echo (a query your schema answers, with $message)"), line
