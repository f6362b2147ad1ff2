"""socketproof.run.clock: the offset estimator, the correction, the offsets table and the test-only
skew hook; and clock_sync's pure figures (the deliver uncertainty, the console line).

The estimator's promise is a bound: whatever the delays each way, the true offset lies within
the stated uncertainty of the estimate. The property test checks it over arbitrary delays, so
a wrong midpoint or a sign slip fails it; the queueing test shows why the shortest round trip
is kept and not an average (an average would be off by milliseconds there).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socketproof.run import clock
from socketproof.run.clock import Estimate, Offsets, Sample, corrected, estimate, process_tag
from socketproof.run.clock_sync import note, pair_uncertainty


def round_trip(master_at: float, offset: float, there: float, back: float) -> Sample:
    """A ping sent at `master_at` (master clock), `there` s on the way, read by a worker whose
    clock is `offset` ahead, answered, `back` s on the way home."""
    return Sample(master_at, master_at + there + offset, master_at + there + back)


def test_a_sample_reads_its_round_trip_and_the_midpoint_offset() -> None:
    sample = round_trip(100.0, 0.5, 0.001, 0.001)
    assert sample.round_trip == pytest.approx(0.002)
    assert sample.offset == pytest.approx(0.5)


@given(
    offset=st.floats(-5.0, 5.0),
    delays=st.lists(st.tuples(st.floats(0.0, 0.05), st.floats(0.0, 0.05)), min_size=1, max_size=16),
)
def test_the_true_offset_is_always_within_the_uncertainty(offset: float, delays: list[tuple[float, float]]) -> None:
    samples = [round_trip(1_700_000_000.0 + n, offset, there, back) for n, (there, back) in enumerate(delays)]
    found = estimate(samples)
    assert found is not None and found.samples == len(samples)
    assert abs(found.offset - offset) <= found.uncertainty + 1e-6
    assert found.uncertainty == pytest.approx(min(there + back for there, back in delays) / 2.0, abs=1e-6)


def test_the_shortest_round_trip_wins_over_queued_answers() -> None:
    """Seven answers queued 20 ms on the way back (a busy worker), one quick: the quick one is
    right to 0.1 ms; the average of the eight would be 8.75 ms off."""
    samples = [round_trip(10.0 + n, 0.5, 0.0001, 0.0201) for n in range(7)] + [round_trip(20.0, 0.5, 0.0001, 0.0001)]
    found = estimate(samples)
    assert found == Estimate(pytest.approx(0.5, abs=1e-4), pytest.approx(0.0001, abs=1e-6), 8)
    average = sum(sample.offset for sample in samples) / len(samples)
    assert abs(average - 0.5) > 0.008, "the queued samples are misleading: the test would not tell the two apart"


def test_no_usable_sample_is_no_estimate() -> None:
    assert estimate([]) is None
    assert estimate([Sample(10.0, 10.0, 9.0)]) is None, "an answer before its ping: a clock jumped back"
    found = estimate([Sample(10.0, 10.0, 9.0), Sample(10.0, 10.2, 10.002)])
    assert found is not None and found.samples == 1 and found.offset == pytest.approx(0.199)


def test_corrected_latency_brings_both_times_to_the_masters_clock() -> None:
    # sent at master time 100.000 by a worker 0.5 s ahead, received at master time 100.003 by one 0.2 s behind
    assert corrected(100.5, 0.5, 99.803, -0.2) == pytest.approx(0.003)
    assert corrected(100.0, 0.0, 100.003, 0.0) == pytest.approx(0.003)


def test_the_process_tag_is_the_end_of_a_sender_label() -> None:
    assert process_tag("chat-w1-3#17@w1.a1b2c3") == "@w1.a1b2c3"
    assert process_tag("me@home#2@w0.ffffff") == "@w0.ffffff"


def test_offsets_time_a_delivery_only_when_both_processes_are_known() -> None:
    table = Offsets()
    sender = "chat-w1-0#4@w1.bbbbbb"
    assert table.latency("@w0.aaaaaa", sender, 100.5, 100.004) is None, "nothing known yet: left out"
    table.update({"@w1.bbbbbb": [0.5, 0.0003], "bad": "x", "@w9.cccccc": []})
    assert table.by_tag == {"@w1.bbbbbb": 0.5}, "malformed entries are skipped"
    assert table.latency("@w0.aaaaaa", sender, 100.5, 100.004) is None, "the receiver's own offset is unknown"
    table.update({"@w1.bbbbbb": [0.5, 0.0003], "@w0.aaaaaa": [0.0, 0.0002]})
    assert table.latency("@w0.aaaaaa", sender, 100.5, 100.004) == pytest.approx(0.004)
    assert table.latency("@w0.aaaaaa", "chat-w2-0#1@w2.dddddd", 100.5, 100.004) is None, "an unknown sender"
    table.update({})
    assert table.latency("@w0.aaaaaa", sender, 100.5, 100.004) is None, "a new table replaces the old"


def test_the_skew_hook_shifts_this_clock_and_does_nothing_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.SKEW_ENV, raising=False)
    assert clock._clock() is time.time, "unset: no wrapper at all"
    monkeypatch.setenv(clock.SKEW_ENV, "0.5")
    skewed = clock._clock()
    assert 0.49 < skewed() - time.time() < 0.51
    monkeypatch.setenv(clock.SKEW_ENV, "soon")
    assert clock._clock() is time.time, "not a number: ignored (with a warning)"


def test_the_deliver_uncertainty_is_the_worst_pair_of_workers() -> None:
    assert pair_uncertainty([]) == 0.0
    assert pair_uncertainty([0.0003]) == pytest.approx(0.0003)
    assert pair_uncertainty([0.0001, 0.0004, 0.0003]) == pytest.approx(0.0007)


def test_the_console_line_says_corrected_with_the_uncertainty_or_left_out() -> None:
    workers = {"w0": {"offset_ms": 0.02, "uncertainty_ms": 0.3}, "w1": {"offset_ms": 500.1, "uncertainty_ms": 0.4}}
    assert note(workers, [], 0.7) == ("clock offsets measured (w0 +0.0 ms, w1 +500.1 ms): any deliver across "
                                      "processes is corrected by them, +/- 0.7 ms")
    assert note(workers, ["w2"], 0.7).endswith("; left out for w2 (no offset measured)")
    assert note({}, ["w0"], 0.0) == "deliver across processes left out: no worker's clock offset was measured"
