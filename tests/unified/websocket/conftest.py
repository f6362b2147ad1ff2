"""Target selection and shared fixtures of the ten core WebSocket tests, plus the metrics plugin.

- `server`: the shared target. The embedded reference server (one per session; tests
  use their own user ids, so sharing does not couple them), or the external server
  named by SOCKETPROOF_TARGET_URL (tokens minted with SOCKETPROOF_JWT_SECRET).
- `configured_server(**settings)`: a dedicated embedded server with those settings,
  shared by the tests of one module that ask for the same settings; skipped with a
  reason against an external target, where nobody can switch the server's settings.
- `target_with(**settings)`: the same against the embedded server; against an external
  target, that target itself when the settings its welcome announces are fast enough for
  the test (support.FAST_ENOUGH), else a skip naming the announced values. It returns the
  server and the values the test must use.
- Every embedded server also gets SOCKETPROOF_FAULTS (the fault matrix uses it).
- `metrics`: per-test latency/throughput, written to reports/core-metrics.json
  (or SOCKETPROOF_METRICS_OUT) and summarised at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerHandle, running_server
from tests.unified.websocket.metrics import MetricsStore, TestMetrics, table
from tests.unified.websocket.support import (
    Baseline,
    Clients,
    Target,
    announced_settings,
    external_target,
    external_url,
    skip_reason,
    too_slow,
    with_env_faults,
)

HERE = Path(__file__).resolve().parent
METRICS_ENV = "SOCKETPROOF_METRICS_OUT"
_store = MetricsStore()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerHandle]:
    url = external_url()
    if url is not None:
        yield external_target(url)
        return
    with running_server(**with_env_faults({})) as handle:
        yield handle


@pytest.fixture(scope="module")
def configured_server() -> Iterator[Callable[..., ServerHandle]]:
    started: dict[tuple[tuple[str, str], ...], ServerHandle] = {}
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> ServerHandle:
            if external_url() is not None:
                pytest.skip(skip_reason(settings))
            key = tuple(sorted((name, str(value)) for name, value in settings.items()))
            if key not in started:
                started[key] = stack.enter_context(running_server(**with_env_faults(settings)))
            return started[key]

        yield start


_announced: dict[str, dict[str, Any]] = {}


def _announced_by(server: ServerHandle) -> dict[str, Any]:
    """What the external target's welcome announces (read once per session)."""
    if server.ws_url not in _announced:
        opened = Clients(server)
        try:
            client = opened.open()
            _announced[server.ws_url] = announced_settings(client.welcome or {})
        finally:
            opened.close_all()
    return _announced[server.ws_url]


@pytest.fixture(scope="module")
def target_with(configured_server: Callable[..., ServerHandle]) -> Callable[..., Target]:
    def pick(**settings: Any) -> Target:
        url = external_url()
        if url is None:
            return Target(configured_server(**settings), dict(settings))
        target = external_target(url)
        announced = _announced_by(target)
        reason = too_slow(announced, settings)
        if reason is not None:
            pytest.skip(reason)
        return Target(target, {name: announced[name] for name in settings})

    return pick


@pytest.fixture
def clients(server: ServerHandle) -> Iterator[Clients]:
    opened = Clients(server)
    try:
        yield opened
    finally:
        opened.close_all()


@pytest.fixture
def baseline(server: ServerHandle) -> Baseline:
    return Baseline(server)


@pytest.fixture
def metrics(request: pytest.FixtureRequest) -> TestMetrics:
    return _store.for_test(request.node.nodeid)


# ---------------------------------------------------------------- metrics plugin hooks


def _is_core(nodeid: str) -> bool:
    return "unified/websocket/test_" in nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _is_core(report.nodeid):
        _store.add_report(report.nodeid, report.when, report.duration, report.outcome)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _store.durations:
        return
    out = Path(os.environ.get(METRICS_ENV) or config.rootpath / "reports" / "core-metrics.json")
    data = _store.write(out)
    terminalreporter.write_sep("-", "socketproof core tests: durations and metrics (reported, not asserted)")
    for line in table(data):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {out}")
