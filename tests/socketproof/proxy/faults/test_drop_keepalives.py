"""drop_keepalives.py: `drop_keepalives[@P]`: STOMP heart-beats and MQTT PINGREQ/PINGRESP go, the rest stays."""

from __future__ import annotations

import random

import pytest

from socketproof.proxy.faults import FaultSpecError, Message, Tally, parse_spec
from socketproof.proxy.faults.drop_keepalives import DropKeepalives, is_keepalive
from tests.socketproof.proxy.faults.support import batch, names, round_trip


def test_only_keepalives_are_dropped_and_counted() -> None:
    tally = Tally()
    fault = DropKeepalives(("down",), 1.0, random.Random(1), tally)
    assert names(fault.apply("down", batch("\n", "MESSAGE\n\nx\x00", "\r\n", "\n\n"), 0.0)) == ["MESSAGE\n\nx\x00"]
    mqtt = [(Message(False, (b"\xd0\x00",)), 0.0), (Message(False, (b"\xc0", b"\x00")), 0.0),
            (Message(False, (b"\x30\x02\x00\x00",)), 0.0)]
    assert [m.chunks for m, _ in fault.apply("down", mqtt, 0.0)] == [(b"\x30\x02\x00\x00",)]
    assert fault.count == 5 and tally == {"down:drop_keepalives": 5}
    assert not fault.applies("up")


def test_what_is_a_keepalive() -> None:
    assert is_keepalive(Message(True, ("\n",))) and is_keepalive(Message(True, (b"\r\n",)))
    assert not is_keepalive(Message(True, ("",))) and not is_keepalive(Message(True, ("x\n",)))
    assert is_keepalive(Message(False, (b"\xc0\x00",))) and not is_keepalive(Message(False, (b"\xd0\x01",)))


def test_probability_and_spec() -> None:
    half = DropKeepalives(probability=0.5, rng=random.Random(3))
    kept = sum(len(half.apply("down", batch("\n"), 0.0)) for _ in range(1000))
    assert 400 < kept < 600
    assert round_trip("down:drop_keepalives") == "down:drop_keepalives"
    assert round_trip("drop_keepalives@0.5") == "drop_keepalives@0.5"
    with pytest.raises(FaultSpecError, match="drop_keepalives"):
        parse_spec("drop_keepalives=0.5")
