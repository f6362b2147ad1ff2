"""delay_ms.py: `delay_ms=MS` and `delay_ms=MS+JITTER_MS`."""

from __future__ import annotations

import random

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.delay_ms import Delay
from tests.socketproof.proxy.faults.support import batch, round_trip


def test_delay_adds_time_with_jitter_and_keeps_order() -> None:
    delay = Delay(probability=1.0, rng=random.Random(2), ms=50, jitter_ms=20)
    dues = [due for _, due in delay.apply("down", batch("a", "b", "c", now=100.0), 100.0)]
    assert all(100.03 <= due <= 100.07 for due in dues) and dues == sorted(dues)
    partial = Delay(probability=0.5, rng=random.Random(2), ms=1000)
    dues = [due for _, due in partial.apply("down", batch(*"abcdefgh"), 0.0)]
    assert dues == sorted(dues) and 0 < partial.count < 8


def test_spec() -> None:
    assert round_trip(" delay_ms = 5 ") == "delay_ms=5"
    assert round_trip("down:delay_ms=100+20@0.5") == "down:delay_ms=100+20@0.5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delay_ms", "fault 'delay_ms' needs a value: delay_ms takes delay_ms=MS or delay_ms=MS+JITTER_MS"),
        ("delay_ms=-5", "number in 'delay_ms=-5' must be 0 or more, got -5"),
        ("delay_ms=5+x", "bad number 'x' in 'delay_ms=5+x'"),
        ("delay_ms=inf", "number in 'delay_ms=inf' must be 0 or more"),
    ],
)
def test_spec_rejects(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_spec(text)
    assert message in str(caught.value)
