"""The server's open-connection count, read before and after a run for the cleanup check.

`--server-connections URL#name` names where any service publishes it: a Prometheus /
OpenMetrics text endpoint (`name` is the metric; samples with any labels are summed) or a
JSON one (`name` is a field, dotted for nested objects: `stats.connections`). The reading
is pure (`parse_count`) apart from one bounded GET (socketproof/target/http_get.py: no redirect
to another origin). Whatever the body holds, the answer is a count or a CountError (the
cleanup check's UNKNOWN with its reason): a count above MAX_COUNT, a sum that overflows, or
JSON nested too deeply for the decoder is no count.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from socketproof.target import http_get

MAX_COUNT = 2**53
"""More open connections than any server holds, and the last integer a float keeps exact."""
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


class CountError(ValueError):
    """The endpoint gave no usable count (one line for the run's log and the verdict's reason)."""


def split_source(source: str) -> tuple[str, str]:
    """`URL#name` -> (URL, name)."""
    url, _, name = source.partition("#")
    return url, name


def parse_count(body: bytes, content_type: str, name: str) -> int:
    """The count named `name` in a Prometheus text or JSON body."""
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith(("{", "[")):
        return _json_count(text, name)
    return _prometheus_count(text, name)


def _json_count(text: str, name: str) -> int:
    try:
        value: Any = json.loads(text)
    except ValueError as error:
        raise CountError(f"not JSON: {error}") from None
    except RecursionError:  # "[[[[...": a hostile endpoint
        raise CountError("not JSON this reader takes: nested too deeply") from None
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            raise CountError(f"no field {name!r} in the JSON")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CountError(f"field {name!r} is {_shown(value)}, not a number")
    return _bounded(value, f"field {name!r}")


def _prometheus_count(text: str, name: str) -> int:
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            raise CountError(f"metric {name!r} has a value that is not a number: {match.group(3)!r}") from None
        total += _bounded(value, f"metric {name!r}")
        found = True
    if not found:
        raise CountError(f"no metric {name!r} in the endpoint's text")
    return _bounded(total, f"metric {name!r} (summed)")


def _bounded(value: float, what: str) -> int:
    """`value` as a count; CountError for NaN, infinity or anything beyond MAX_COUNT either way
    (compared, never converted first: int(1e400) or float(10**400) would raise)."""
    if not -MAX_COUNT <= value <= MAX_COUNT:  # False for NaN too
        raise CountError(f"{what} is {_shown(value)}, not a number of connections")
    return int(value)


def _shown(value: Any) -> str:
    """A value for the one-line reason: a huge integer by its size (its str() may raise), the rest cut short."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_count(source: str, timeout: float = 5.0, context: Any = None) -> int:
    """GET the source (https: with the run's TLS `context`) and read its count; CountError says why not."""
    url, name = split_source(source)
    try:
        answer = http_get.get(url, None, timeout, context)
    except http_get.HttpGetError as error:
        raise CountError(f"cannot read {url}: {error}") from None
    if answer.status != 200:
        raise CountError(f"{url} answered HTTP {answer.status}")
    return parse_count(answer.body, answer.content_type, name)
