"""freeze_pings.py: `freeze_pings` and `freeze_pings@P`."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.freeze_pings import FreezePings
from tests.socketproof.proxy.faults.support import round_trip


def test_freeze_pings_per_direction() -> None:
    freeze = FreezePings(("down",))
    assert not freeze.forward("down") and freeze.forward("up") and freeze.count == 1


def test_spec() -> None:
    assert round_trip("freeze_pings@0.3") == "freeze_pings@0.3"
    assert round_trip("down:freeze_pings") == "down:freeze_pings"
    with pytest.raises(FaultSpecError, match="bad fault 'freeze_pings=1': freeze_pings takes"):
        parse_spec("freeze_pings=1")
