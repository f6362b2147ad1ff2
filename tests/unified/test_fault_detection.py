"""Proof that the core tests catch real bugs: each fault switch makes the expected core tests fail.

The whole matrix runs once per module (pytest subprocesses, two at a time); each fault is
then its own test, so a fault that slips through is named. The clean run is the core tests
of this session when they ran here (tests/unified/conftest.py runs this file last), else a
subprocess too. The matrix is printed at the end
of the session and written to reports/fault-matrix.json.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unified import fault_matrix
from tests.unified.fault_matrix import FAULTS, NO_FAULT, Run

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> dict[str, Run]:
    t0 = time.monotonic()
    clean = fault_matrix.SESSION.as_clean_run()  # the core tests already ran in this session: reuse them
    runs = fault_matrix.run_matrix(tmp_path_factory.mktemp("fault-matrix"), clean)
    data = fault_matrix.report(runs, time.monotonic() - t0)
    fault_matrix.write(data, Path(pytestconfig.rootpath) / "reports" / "fault-matrix.json")
    fault_matrix.LAST = data
    return runs


def _explain(result: Run) -> str:
    return f"exit={result.returncode}, failed={result.failed}\n--- output (tail) ---\n{result.output[-3000:]}"


def test_core_suite_passes_without_faults(matrix: dict[str, Run]) -> None:
    clean = matrix[NO_FAULT]
    assert clean.returncode == 0, _explain(clean)
    assert clean.outcomes and not clean.failed
    assert sum(outcome == "passed" for outcome in clean.outcomes.values()) >= 10 * 3


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.switch for fault in FAULTS])
def test_fault_is_caught_by_the_expected_tests(matrix: dict[str, Run], fault: fault_matrix.Fault) -> None:
    result = matrix[fault.switch]
    assert result.returncode == 1, f"the core tests did not fail with {fault.switch}: {_explain(result)}"
    missed = sorted(set(fault.must_fail) - set(result.failed))
    assert not missed, f"with {fault.switch} these tests passed but must fail: {missed}; {_explain(result)}"
    outside = [name for name in result.failed if not any(name.startswith(Path(f).name) for f in fault.files)]
    assert not outside, f"failures outside the files run: {outside}"
