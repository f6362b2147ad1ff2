"""Deliver latency windows cut out of cumulative histograms (socketproof/run/latency_windows.py)."""

from __future__ import annotations

from socketproof.run.latency_windows import between, phases, summary


def test_between_is_what_was_reported_in_between() -> None:
    assert between({5: 2, 9: 1}, {5: 3, 9: 1, 40: 2}) == {5: 1, 40: 2}
    assert between(None, {5: 3}) == {5: 3}


def test_summary_nearest_rank() -> None:
    assert summary({}) == {"count": 0, "p50": None, "p95": None, "max": None}
    assert summary({10: 50, 20: 45, 900: 5}) == {"count": 100, "p50": 10, "p95": 20, "max": 900}
    assert summary({10: 50, 20: 44, 900: 6})["p95"] == 900


def test_phases_from_snapshots_and_only_those_taken() -> None:
    snapshots = {"before": {5: 10}, "start": {5: 30}, "end": {5: 31, 800: 4}, "after": {5: 60, 800: 4}}
    out = phases(snapshots)
    assert out["before"] == {"count": 20, "p50": 5, "p95": 5, "max": 5}
    assert out["during"] == {"count": 5, "p50": 800, "p95": 800, "max": 800}
    assert out["after"]["count"] == 29 and out["after"]["p95"] == 5
    assert set(phases({"before": {}, "start": {}})) == {"before"}  # the run ended at the disruption's start
