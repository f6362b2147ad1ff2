"""connection.py: every fault of a spec built for one connection, as the relay asks them."""

from __future__ import annotations

import pytest

from socketproof.proxy.faults import ConnectionFaults, Tally, parse_spec
from tests.socketproof.proxy.faults.support import msg, names


def test_connection_faults_apply_in_a_fixed_order_and_only_their_direction() -> None:
    tally = Tally()
    faults = ConnectionFaults(parse_spec("down:duplicate=1,down:drop=1"), tally, seed=1)
    assert faults.on_message("down", msg("a"), 0.0) == []  # dropped before it could be duplicated
    assert names(faults.on_message("up", msg("a"), 0.0)) == ["a"]
    assert tally == {"down:drop": 1}
    assert faults.buffers_messages("down") and not faults.buffers_messages("up")


def test_a_seed_makes_connections_repeatable_and_distinct() -> None:
    def run(index: int) -> list[int]:
        faults = ConnectionFaults(parse_spec("drop=0.5"), Tally(), seed=9, index=index)
        return [len(faults.on_message("down", msg("x"), 0.0)) for _ in range(40)]

    assert run(1) == run(1) and run(1) != run(2)


def test_connection_faults_control_and_triggers() -> None:
    faults = ConnectionFaults(parse_spec("down:freeze_pings,half_open=2,cut_after=5s,throttle=100"), Tally())
    assert faults.forward_control("up") and not faults.forward_control("down")
    assert faults.on_data_frame("up") == [] and [f.name for f in faults.on_data_frame("down")] == ["half_open"]
    assert faults.halted("up") and faults.halted("down")
    assert faults.timers() == [5.0] and faults.paced
    assert faults.pace("up", 100, 0.0) == 0.0 and faults.pace("up", 100, 0.0) == pytest.approx(1.0)
    [cut] = faults.on_time(5.0)
    assert cut.name == "cut_after" and cut.cuts


def test_held_messages_are_flushed_and_released() -> None:
    faults = ConnectionFaults(parse_spec("reorder=1"), Tally())
    assert faults.on_message("down", msg("a"), 0.0) == [] and faults.paced
    assert faults.release("down", 0.5) == [] and names(faults.flush("down")) == ["a"]
    faults.on_message("up", msg("b"), 0.0)
    assert names(faults.release("up", 1.0)) == ["b"]


def test_no_fault_asks_nothing_of_the_relay() -> None:
    faults = ConnectionFaults(parse_spec(""), Tally())
    assert not faults.buffers_messages("up") and faults.forward_control("down") and not faults.paced
    assert faults.on_data_frame("up") == [] and faults.timers() == [] and not faults.halted("down")
    assert faults.pace("down", 10**6, 3.0) == 3.0
