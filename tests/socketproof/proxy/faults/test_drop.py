"""drop.py: `drop=P`."""

from __future__ import annotations

import random

import pytest

from socketproof.proxy.faults import FaultSpecError, Tally, parse_spec
from socketproof.proxy.faults.drop import Drop
from tests.socketproof.proxy.faults.support import batch, names, round_trip


def test_drop_all_none_and_counts_per_direction() -> None:
    tally = Tally()
    always = Drop(("down",), 1.0, random.Random(1), tally)
    assert always.apply("down", batch("a", "b"), 0.0) == []
    assert always.count == 2 and tally == {"down:drop": 2}
    assert not always.applies("up")
    never = Drop(probability=0.0)
    assert names(never.apply("up", batch("a"), 0.0)) == ["a"] and never.count == 0


def test_drop_rate_follows_the_probability() -> None:
    drop = Drop(probability=0.2, rng=random.Random(5))
    kept = sum(len(drop.apply("down", batch("x"), 0.0)) for _ in range(2000))
    assert 1500 < kept < 1700 and drop.count == 2000 - kept


def test_spec() -> None:
    assert round_trip("up:drop=0.1,down:drop=0.2") == "up:drop=0.1,down:drop=0.2"
    assert parse_spec("drop=0.25").settings[0].probability == 0.25


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drop", "fault 'drop' needs a value: drop takes drop=P (probability 0..1)"),
        ("drop=1.5", "probability in 'drop=1.5' must be between 0 and 1, got 1.5"),
        ("drop=abc", "bad probability 'abc' in 'drop=abc'"),
        ("drop=0.1@0.5", "bad fault 'drop=0.1@0.5': drop takes"),
    ],
)
def test_spec_rejects(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_spec(text)
    assert message in str(caught.value)
