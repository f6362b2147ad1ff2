"""The fault matrix runs last and is printed at the end of the session.

The core tests' outcomes are noted as they run, so the fault matrix can reuse them as its
clean run instead of running the ten files a second time.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unified import fault_matrix


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: "test_fault_detection.py" in item.nodeid)  # stable: the rest keep their order


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if fault_matrix.CORE + "test_" in report.nodeid:
        fault_matrix.SESSION.record(report.nodeid, report.when, report.outcome, report.duration)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if fault_matrix.LAST is None:
        return
    terminalreporter.write_sep("-", "socketproof fault matrix: fault -> failing core tests")
    for line in fault_matrix.lines(fault_matrix.LAST):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {config.rootpath / 'reports' / 'fault-matrix.json'}")
