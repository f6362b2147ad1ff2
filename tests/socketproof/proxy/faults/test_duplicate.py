"""duplicate.py: `duplicate=P`."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import FaultSpecError, parse_spec
from socketproof.proxy.faults.duplicate import Duplicate
from tests.socketproof.proxy.faults.support import batch, names, round_trip


def test_duplicate_sends_the_same_message_twice_in_a_row() -> None:
    duplicate = Duplicate(probability=1.0)
    assert names(duplicate.apply("down", batch("a", "b"), 0.0)) == ["a", "a", "b", "b"]
    assert duplicate.count == 2


def test_spec() -> None:
    assert round_trip("down:duplicate=0.1") == "down:duplicate=0.1"
    with pytest.raises(FaultSpecError, match="bad fault 'duplicate=0.1\\+raw'"):
        parse_spec("duplicate=0.1+raw")
