"""Autobahn|Testsuite through the fault proxy (no faults): the same result as without it.

scripts/autobahn.sh with AUTOBAHN_PROXY=1 runs wstest's fuzzing client (sections 1-7 and
10) against the reference server's echo endpoint through `python -m socketproof.proxy`:
no FAILED and no NON-STRICT case, as tests/reliability/test_autobahn.py asserts directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_autobahn_through_the_proxy_is_as_clean_as_direct(tmp_path: Path) -> None:
    if shutil.which("timeout") is None:
        pytest.skip("needs coreutils timeout")
    found = subprocess.run(["bash", "scripts/autobahn.sh", "--find-python2"], cwd=ROOT, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
    if found.returncode == 2:  # no wstest installed and no Python 2.7 to install it with
        pytest.skip(found.stderr.strip().splitlines()[-1])
    env = {**os.environ, "PYTHON": sys.executable, "AUTOBAHN_REPORTS": str(tmp_path), "AUTOBAHN_CASE_TIMEOUT": "300",
           "AUTOBAHN_PROXY": "1"}
    result = subprocess.run(["bash", "scripts/autobahn.sh"], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                            stdin=subprocess.DEVNULL, env=env)
    assert "through the fault proxy" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"1", "2", "3", "4", "5", "6", "7", "10"}
    for section, counts in summary.items():
        assert counts["cases"] > 0, section
        assert counts.get("FAILED", 0) == 0 and counts.get("NON-STRICT", 0) == 0, (section, counts)
        assert counts["failed_cases"] == [] and counts["close_not_ok"] == [], (section, counts)
