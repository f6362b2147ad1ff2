"""Autobahn|Testsuite (wstest fuzzingclient) against the reference server: sections 1-7
and 10 with no FAILED and no NON-STRICT case (scripts/autobahn.sh does the work)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY2 = os.environ.get("PY2", "/root/.pyenv/versions/2.7.18/bin/python")


@pytest.mark.slow
def test_autobahn_sections_1_to_7_and_10(tmp_path: Path) -> None:
    if not (ROOT / ".venv-autobahn" / "bin" / "wstest").exists() and not Path(PY2).exists():
        pytest.skip(f"no wstest and no Python 2.7 at {PY2} to install it")
    if shutil.which("timeout") is None:
        pytest.skip("needs coreutils timeout")
    result = subprocess.run(
        ["bash", "scripts/autobahn.sh"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
        env={**os.environ, "AUTOBAHN_REPORTS": str(tmp_path), "AUTOBAHN_CASE_TIMEOUT": "300"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"1", "2", "3", "4", "5", "6", "7", "10"}
    for section, counts in summary.items():
        assert counts["cases"] > 0, section
        assert counts.get("FAILED", 0) == 0 and counts.get("NON-STRICT", 0) == 0, (section, counts)
        assert counts["failed_cases"] == [] and counts["close_not_ok"] == [], (section, counts)
