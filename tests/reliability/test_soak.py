"""bench/soak.py as a test: after many connect / message / disconnect cycles the server's
registry is back to its start and its memory has not grown past a small bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def soak(tmp_path: Path, duration: int, timeout: float) -> dict:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, "bench/soak.py", "--duration", str(duration), "--workers", "3", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert out.exists(), result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert result.returncode == (0 if report["ok"] else 1), result.stdout + result.stderr
    return report


def assert_soak_held(report: dict) -> None:
    assert report["ok"], report["problems"]
    assert report["cycles"] > 0 and report["failed_cycles"] <= report["cycles"] // 10
    for key, start in report["stats_start"].items():
        assert report["stats_end"][key] <= start, (key, report["stats_start"], report["stats_end"])
    assert report["server_exit"] == 0


def test_soak_smoke(tmp_path: Path) -> None:
    assert_soak_held(soak(tmp_path, duration=4, timeout=120))


@pytest.mark.slow
def test_soak_one_minute(tmp_path: Path) -> None:
    report = soak(tmp_path, duration=60, timeout=300)
    assert_soak_held(report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
