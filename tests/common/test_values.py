"""common/values.py: the numbers of switch and fault-spec text, one error line naming the part."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common import values


def test_good_values() -> None:
    assert values.probability(" 0.25 ", "drop=0.25") == 0.25
    assert values.probability("1", "p") == 1.0 and values.probability("0", "p") == 0.0
    assert values.amount("50", "delay_ms=50") == 50.0 and values.amount("0", "x") == 0.0
    assert values.count("3", "cut_after=3") == 3
    assert values.duration("2.5s", "cut_after=2.5s") == 2.5 and values.duration("0s", "x") == 0.0
    assert values.is_duration("5s ") and not values.is_duration("5")


@pytest.mark.parametrize(
    ("check", "raw", "message"),
    [
        (values.probability, "abc", "bad probability 'abc' in 'part': usage"),
        (values.probability, "1.5", "probability in 'part' must be between 0 and 1, got 1.5"),
        (values.probability, "-0.1", "probability in 'part' must be between 0 and 1, got -0.1"),
        (values.probability, "nan", "probability in 'part' must be between 0 and 1, got nan"),
        (values.amount, "x", "bad number 'x' in 'part': usage"),
        (values.amount, "-5", "number in 'part' must be 0 or more, got -5"),
        (values.amount, "inf", "number in 'part' must be 0 or more, got inf"),
        (values.amount, "nan", "number in 'part' must be 0 or more, got nan"),
        (values.count, "2.5", "bad count '2.5' in 'part': usage"),
        (values.count, "0", "count in 'part' must be at least 1, got 0"),
        (values.duration, "5", "bad duration '5' in 'part': usage"),
        (values.duration, "xs", "bad number 'x' in 'part': usage"),
        (values.duration, "-1s", "number in 'part' must be 0 or more, got -1"),
    ],
)
def test_bad_values_are_one_line_naming_the_part(check: Callable[[str, str, str], object], raw: str,
                                                 message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check(raw, "part", "usage")
    assert str(caught.value) == message


def test_no_usage_no_colon() -> None:
    with pytest.raises(ValueError, match=r"^bad count 'x' in 'n=x'$"):
        values.count("x", "n=x")


def test_the_server_and_the_proxy_say_the_same() -> None:
    from server.faults import parse_faults
    from socketproof.proxy.faults import parse_spec

    for text in ("drop=1.5", "drop=abc", "delay_ms=-5", "drop"):
        with pytest.raises(ValueError) as server:
            parse_faults(text)
        with pytest.raises(ValueError) as proxy:
            parse_spec(text)
        assert str(server.value).split(":")[0] == str(proxy.value).split(":")[0]
