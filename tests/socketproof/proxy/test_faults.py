"""The fault layer, pure: every fault class, the per-connection chain, and the spec parser."""

from __future__ import annotations

import random

import pytest

from socketproof.proxy.faults import (
    ConnectionFaults,
    Corrupt,
    CutAfter,
    Delay,
    Drop,
    Duplicate,
    FaultSpecError,
    FreezePings,
    HalfOpen,
    Message,
    Reorder,
    Tally,
    Throttle,
    parse_spec,
)


def msg(text: str) -> Message:
    return Message(True, (text,))


def batch(*texts: str, now: float = 0.0) -> list[tuple[Message, float]]:
    return [(msg(text), now) for text in texts]


def names(scheduled: list[tuple[Message, float]]) -> list[str]:
    return ["".join(str(chunk) for chunk in message.chunks) for message, _ in scheduled]


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


def test_duplicate_sends_the_same_message_twice_in_a_row() -> None:
    duplicate = Duplicate(probability=1.0)
    assert names(duplicate.apply("down", batch("a", "b"), 0.0)) == ["a", "a", "b", "b"]
    assert duplicate.count == 2


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


def test_delay_adds_time_with_jitter_and_keeps_order() -> None:
    delay = Delay(probability=1.0, rng=random.Random(2), ms=50, jitter_ms=20)
    dues = [due for _, due in delay.apply("down", batch("a", "b", "c", now=100.0), 100.0)]
    assert all(100.03 <= due <= 100.07 for due in dues) and dues == sorted(dues)
    partial = Delay(probability=0.5, rng=random.Random(2), ms=1000)
    dues = [due for _, due in partial.apply("down", batch(*"abcdefgh"), 0.0)]
    assert dues == sorted(dues) and 0 < partial.count < 8


def test_freeze_pings_per_direction() -> None:
    freeze = FreezePings(("down",))
    assert not freeze.forward("down") and freeze.forward("up") and freeze.count == 1


def test_cut_after_frames_and_seconds_fire_once() -> None:
    cut = CutAfter(("up",), frames=3)
    assert [cut.on_frame("up") for _ in range(4)] == [False, False, True, False]
    assert not cut.on_frame("down") and cut.count == 1
    timed = CutAfter(seconds=2.0)
    assert not timed.on_time(1.9) and timed.on_time(2.0) and not timed.on_time(3.0)
    assert timed.tally == {"both:cut_after": 1}
    assert not CutAfter(probability=0.0, frames=1).on_frame("up")  # not armed on this connection


def test_half_open_is_a_trigger_too() -> None:
    half = HalfOpen(seconds=0.0)
    assert half.on_time(0.0) and half.fired


def test_throttle_paces_bytes_per_direction() -> None:
    throttle = Throttle(("down",), rate=1000)
    assert throttle.due("down", 500, 10.0) == 10.0
    assert throttle.due("down", 500, 10.0) == pytest.approx(10.5)
    assert throttle.due("down", 100, 12.0) == 12.0  # idle time is not saved up
    assert throttle.due("up", 10_000, 10.0) == 10.0 and throttle.count == 1


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
    assert faults.on_data_frame("up") == [] and faults.on_data_frame("down") == ["half_open"]
    assert faults.halted("up") and faults.halted("down")
    assert faults.timers() == [5.0] and faults.paced
    assert faults.pace("up", 100, 0.0) == 0.0 and faults.pace("up", 100, 0.0) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ spec


def test_spec_parses_the_documented_example() -> None:
    spec = parse_spec("drop=0.2,duplicate=0.1,down:reorder=0.2,delay_ms=50+20,freeze_pings")
    assert [(s.name, s.directions, s.probability) for s in spec.settings] == [
        ("drop", ("up", "down"), 0.2), ("duplicate", ("up", "down"), 0.1), ("reorder", ("down",), 0.2),
        ("delay_ms", ("up", "down"), 1.0), ("freeze_pings", ("up", "down"), 1.0)]
    assert dict(spec.settings[3].params) == {"ms": 50.0, "jitter_ms": 20.0}
    assert spec.describe() == "drop=0.2,duplicate=0.1,down:reorder=0.2,delay_ms=50+20,freeze_pings"
    assert spec.data_faults_on


@pytest.mark.parametrize(
    ("text", "described", "data_faults"),
    [
        ("", "none", False),
        ("none", "none", False),
        ("corrupt=0.5+raw", "corrupt=0.5+raw", True),
        ("up:cut_after=10,down:cut_after=2.5s", "up:cut_after=10,down:cut_after=2.5s", False),
        ("half_open", "half_open=0s", False),
        ("half_open=4@0.5", "half_open=4@0.5", False),
        ("freeze_pings@0.3", "freeze_pings@0.3", False),
        ("both:throttle=1000", "throttle=1000", False),
        ("up:drop=0.1,down:drop=0.2", "up:drop=0.1,down:drop=0.2", True),
        (" delay_ms = 5 ", "delay_ms=5", True),
    ],
)
def test_spec_accepts(text: str, described: str, data_faults: bool) -> None:
    spec = parse_spec(text)
    assert spec.describe() == described and spec.data_faults_on is data_faults
    assert parse_spec(spec.describe()) == spec or described == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss=0.1", "unknown fault 'loss' in 'loss=0.1'; known: drop, corrupt"),
        ("drop", "fault 'drop' needs a value: drop takes drop=P (probability 0..1)"),
        ("drop=1.5", "probability in 'drop=1.5' must be between 0 and 1, got 1.5"),
        ("drop=abc", "bad probability 'abc' in 'drop=abc'"),
        ("drop=0.1@0.5", "bad fault 'drop=0.1@0.5': drop takes"),
        ("sideways:drop=0.1", "bad direction 'sideways' in 'sideways:drop=0.1'"),
        ("drop=0.1,down:drop=0.2", "fault 'drop' given twice for direction 'down'"),
        ("drop=0.1,,dup", "empty part in fault spec"),
        ("delay_ms=-5", "number in 'delay_ms=-5' must be 0 or more, got -5"),
        ("delay_ms=5+x", "bad number 'x' in 'delay_ms=5+x'"),
        ("cut_after", "fault 'cut_after' needs a value"),
        ("cut_after=0", "count in 'cut_after=0' must be at least 1"),
        ("cut_after=2.5", "bad count '2.5' in 'cut_after=2.5'"),
        ("throttle=0", "the rate must be above 0 bytes/s"),
        ("freeze_pings=1", "bad fault 'freeze_pings=1': freeze_pings takes"),
        ("duplicate=0.1+raw", "bad fault 'duplicate=0.1+raw'"),
        ("half_open@2", "probability in 'half_open@2' must be between 0 and 1"),
        ("delay_ms=inf", "number in 'delay_ms=inf' must be 0 or more"),
    ],
)
def test_spec_rejects_with_one_precise_line(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_spec(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
