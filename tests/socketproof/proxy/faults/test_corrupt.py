"""corrupt.py: `corrupt=P` and `corrupt=P+raw`."""

from __future__ import annotations

import random

import pytest

from socketproof.proxy.faults import FaultSpecError, Message, parse_spec
from socketproof.proxy.faults.corrupt import Corrupt
from tests.socketproof.proxy.faults.support import batch, round_trip


def test_corrupt_keeps_text_valid_and_changes_exactly_one_character() -> None:
    corrupt = Corrupt(probability=1.0, rng=random.Random(3))
    for _ in range(50):
        [(out, _)] = corrupt.apply("down", batch('{"type": "echo", "data": "ünï"}'), 0.0)
        text = out.chunks[0]
        assert isinstance(text, str) and len(text) == len('{"type": "echo", "data": "ünï"}')
        assert sum(a != b for a, b in zip(text, '{"type": "echo", "data": "ünï"}', strict=True)) == 1
        text.encode("utf-8")


def test_corrupt_raw_breaks_utf8_and_binary_gets_a_flipped_bit() -> None:
    raw = Corrupt(probability=1.0, rng=random.Random(4), raw=True)
    for seed_text in ("ascii only", "é" * 10, "mixed é a"):
        [(out, _)] = raw.apply("down", batch(seed_text), 0.0)
        assert out.text and isinstance(out.chunks[0], bytes)
        with pytest.raises(UnicodeDecodeError):
            out.chunks[0].decode("utf-8")
    binary = Corrupt(probability=1.0, rng=random.Random(4))
    [(out, _)] = binary.apply("up", [(Message(False, (b"\x00" * 8,)), 0.0)], 0.0)
    assert bin(int.from_bytes(out.chunks[0], "big")).count("1") == 1
    assert Corrupt(probability=1.0).apply("up", [(Message(False, (b"",)), 0.0)], 0.0)[0][0].chunks == (b"",)


def test_spec() -> None:
    assert round_trip("corrupt=0.5+raw") == "corrupt=0.5+raw"
    assert dict(parse_spec("corrupt=0.5+raw").settings[0].params) == {"raw": True}
    assert round_trip("corrupt=0.5") == "corrupt=0.5"
    with pytest.raises(FaultSpecError, match="bad fault 'corrupt=0.5\\+cooked': corrupt takes corrupt=P or"):
        parse_spec("corrupt=0.5+cooked")
