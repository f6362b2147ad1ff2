"""Prints the fault matrix (tests/unified/test_fault_detection.py) at the end of the session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unified import fault_matrix


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if fault_matrix.LAST is None:
        return
    terminalreporter.write_sep("-", "socketproof fault matrix: fault -> failing core tests")
    for line in fault_matrix.lines(fault_matrix.LAST):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written to {config.rootpath / 'reports' / 'fault-matrix.json'}")
