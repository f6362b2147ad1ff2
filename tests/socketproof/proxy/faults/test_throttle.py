"""throttle.py: `throttle=BYTES_PER_S`."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.throttle import Throttle
from tests.socketproof.proxy.faults.support import round_trip


def test_throttle_paces_bytes_per_direction() -> None:
    throttle = Throttle(("down",), rate=1000)
    assert throttle.due("down", 500, 10.0) == 10.0
    assert throttle.due("down", 500, 10.0) == pytest.approx(10.5)
    assert throttle.due("down", 100, 12.0) == 12.0  # idle time is not saved up
    assert throttle.due("up", 10_000, 10.0) == 10.0 and throttle.count == 1


def test_spec() -> None:
    assert round_trip("both:throttle=1000") == "throttle=1000"
    with pytest.raises(FaultSpecError, match="the rate must be above 0 bytes/s"):
        parse_spec("throttle=0")
