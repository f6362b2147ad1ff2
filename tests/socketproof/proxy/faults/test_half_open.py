"""half_open.py: `half_open`, `half_open=N` and `half_open=Ns`."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.half_open import HalfOpen
from tests.socketproof.proxy.faults.support import round_trip


def test_half_open_is_a_trigger_too() -> None:
    half = HalfOpen(seconds=0.0)
    assert half.on_time(0.0) and half.fired
    assert HalfOpen.halts and not HalfOpen.cuts


def test_spec() -> None:
    assert round_trip("half_open") == "half_open=0s"
    assert round_trip("half_open=4@0.5") == "half_open=4@0.5"
    with pytest.raises(FaultSpecError, match="probability in 'half_open@2' must be between 0 and 1"):
        parse_spec("half_open@2")
