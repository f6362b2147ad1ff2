"""cut_after.py: `cut_after=N` (data frames) and `cut_after=Ns` (seconds)."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.cut_after import CutAfter
from tests.socketproof.proxy.faults.support import round_trip


def test_cut_after_frames_and_seconds_fire_once() -> None:
    cut = CutAfter(("up",), frames=3)
    assert [cut.on_frame("up") for _ in range(4)] == [False, False, True, False]
    assert not cut.on_frame("down") and cut.count == 1
    timed = CutAfter(seconds=2.0)
    assert not timed.on_time(1.9) and timed.on_time(2.0) and not timed.on_time(3.0)
    assert timed.tally == {"both:cut_after": 1}
    assert not CutAfter(probability=0.0, frames=1).on_frame("up")  # not armed on this connection
    assert CutAfter.cuts and not CutAfter.halts


def test_spec() -> None:
    assert round_trip("up:cut_after=10,down:cut_after=2.5s") == "up:cut_after=10,down:cut_after=2.5s"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cut_after", "fault 'cut_after' needs a value"),
        ("cut_after=0", "count in 'cut_after=0' must be at least 1"),
        ("cut_after=2.5", "bad count '2.5' in 'cut_after=2.5'"),
        ("cut_after=xs", "bad number 'x' in 'cut_after=xs'"),
    ],
)
def test_spec_rejects(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_spec(text)
    assert message in str(caught.value)
