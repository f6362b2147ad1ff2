"""reorder.py: `reorder=P`."""

from __future__ import annotations

from socketproof.proxy.faults.reorder import Reorder
from tests.socketproof.proxy.faults.support import batch, names, round_trip


def test_reorder_holds_one_and_releases_it_after_the_next() -> None:
    reorder = Reorder(probability=1.0)
    assert reorder.apply("down", batch("a"), 0.0) == []
    assert names(reorder.apply("down", batch("b"), 0.1)) == ["b", "a"]
    assert reorder.count == 1
    assert reorder.apply("up", batch("c"), 0.2) == []  # held per direction
    assert names(reorder.flush("up")) == ["c"] and reorder.flush("up") == []


def test_reorder_releases_a_lonely_message_late_without_counting_it() -> None:
    reorder = Reorder(probability=1.0, hold_max=1.0)
    reorder.apply("down", batch("a"), 10.0)
    assert reorder.release("down", 10.5) == []
    assert names(reorder.release("down", 11.0)) == ["a"]
    assert reorder.count == 0


def test_spec() -> None:
    assert round_trip("down:reorder=0.2") == "down:reorder=0.2"
