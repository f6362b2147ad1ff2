"""spec.py: the splitter cuts `[up:|down:]name[=value][@P],...` and asks the registry; nothing more.

Each fault's own values are tested with the fault (test_drop.py, test_delay_ms.py, ...).
"""

from __future__ import annotations

from typing import Any

import pytest

from socketproof.proxy.faults import FaultSpecError, MessageFault, Part, parse_spec, split_part
from socketproof.proxy.faults.registry import Registry


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
        (" None ", "none", False),
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
    assert bool(spec) is (described != "none")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss=0.1", "unknown fault 'loss' in 'loss=0.1'; known: drop, corrupt"),
        ("sideways:drop=0.1", "bad direction 'sideways' in 'sideways:drop=0.1'"),
        ("drop=0.1,down:drop=0.2", "fault 'drop' given twice for direction 'down'"),
        ("drop=0.1,,dup", "empty part in fault spec"),
        # the values, through the splitter (each fault's test file has the rest)
        ("drop", "fault 'drop' needs a value: drop takes drop=P (probability 0..1)"),
        ("drop=1.5", "probability in 'drop=1.5' must be between 0 and 1, got 1.5"),
        ("drop=abc", "bad probability 'abc' in 'drop=abc'"),
        ("drop=0.1@0.5", "bad fault 'drop=0.1@0.5': drop takes"),
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


@pytest.mark.parametrize(
    ("text", "directions", "name", "value", "at"),
    [
        ("drop=0.2", ("up", "down"), "drop", "0.2", None),
        ("down:half_open=4@0.5", ("down",), "half_open", "4", "0.5"),
        (" up : freeze_pings @ 0.3 ", ("up",), "freeze_pings", None, "0.3"),
        ("both:x", ("up", "down"), "x", None, None),
        ("x=", ("up", "down"), "x", "", None),
        ("x=a+b=c", ("up", "down"), "x", "a+b=c", None),
    ],
)
def test_split_part_only_cuts(text: str, directions: tuple[str, ...], name: str, value: str | None,
                              at: str | None) -> None:
    part = split_part(text)
    assert (part.text, part.directions, part.name, part.value, part.at) == (text, directions, name, value, at)


class _Echo(MessageFault):
    """A fault known only to a test registry."""

    name = "echo"
    usage = "echo or echo=WORD"

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        return {} if part.value is None else {"word": part.value}


def test_the_splitter_asks_the_registry_it_is_given() -> None:
    registry = Registry()
    registry.register(_Echo)
    spec = parse_spec("down:echo=hi@0.5", registry)
    [setting] = spec.settings
    assert (setting.fault, setting.directions, setting.probability, setting.params) == (
        _Echo, ("down",), 0.5, (("word", "hi"),))
    assert spec.data_faults_on
    with pytest.raises(FaultSpecError, match="unknown fault 'drop' in 'drop=1'; known: echo$"):
        parse_spec("drop=1", registry)
    with pytest.raises(FaultSpecError, match="probability in 'echo@x' .*|bad probability 'x' in 'echo@x': echo takes"):
        parse_spec("echo@x", registry)
