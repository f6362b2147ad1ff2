"""Fixtures for the Locust integration tests: one pool of background `locust` runs per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.socketproof.support import RunPool

FAULT_MATRIX: list[dict[str, Any]] = []
"""Filled by test_fault_matrix; printed in the terminal summary."""


@pytest.fixture(scope="session")
def locust_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPool]:
    pool = RunPool(tmp_path_factory.mktemp("locust-runs"))
    try:
        yield pool
    finally:
        pool.close()


def format_matrix(rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'fault':<22} {'exit':>4} {'secs':>5}  failing checks (anomaly kinds)", "-" * 90]
    for row in rows:
        failing = "; ".join(f"{name}: {','.join(kinds)}" for name, kinds in row["failing"].items()) or "none"
        lines.append(f"{row['fault']:<22} {row['exit_code']:>4} {row['seconds']:>5.1f}  {failing}")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_MATRIX:
        terminalreporter.section("Socketproof checks fault matrix")
        for line in format_matrix(FAULT_MATRIX):
            terminalreporter.write_line(line)
