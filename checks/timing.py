"""Timing thresholds in the style of k6: ``"echo:p95<50"``, ``"connect:p99<200"``,
``"failures<0.1%"``, ``"echo:avg<20"``, ``"rps>100"``; and the recovery family (judged by
the recovery check over the history, not here): ``"recovery:max<10s"``, ``"recovery:p95<5s"``,
``"recovery:lost<1"``, ``"recovery:missed<1"``.

Grammar: ``[name:]metric op value[%]``. `name` is a request name (default
"Aggregated"); `metric` is pNN (any percentile, e.g. p95, p99.9), avg, min, max,
rps or failures (failed / all requests; a fraction, or a percentage with %); `op` is
<, <=, > or >=. Times are milliseconds. With the name `recovery` the metric is p50, p95 or max (seconds
an identity took to have a connection open again after a disruption; `s` or `ms` after the
value), lost (identities that never came back) or missed (messages published while connections
were gone that never reached them).

`check_timing` takes plain stats, one dict per request name (the Locust plugin
builds them from locust's stats):
``{"num_requests", "num_failures", "percentiles": {50: ms, 95: ms, 99: ms}, "avg",
"min", "max", "rps"}``, plus an "Aggregated" entry.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from checks.registry import Check, register
from checks.verdict import UNKNOWN, Anomaly, Verdict, verdict

NAME = "timing"
AGGREGATED = "Aggregated"
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_RE = re.compile(r"^\s*(?:(?P<name>.+?)\s*:\s*)?(?P<metric>[A-Za-z][\w.]*)\s*"
                 r"(?P<op><=|>=|<|>)\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<pct>%|ms|s)?\s*$")
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_METRICS = "pNN (e.g. p95, p99.9), avg, min, max, rps, failures"
RECOVERY = "recovery"
"""The threshold name of the recovery family (checks.recovery judges it)."""
RECOVERY_METRICS = ("p50", "p95", "max", "lost", "missed")


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; `limit` is in ms, requests/s, or a failure fraction (recovery
    family: seconds, or a count of identities for `lost`)."""

    expr: str
    name: str
    metric: str
    op: str
    limit: float
    percentile: float | None = None

    @property
    def family(self) -> str:
        """"recovery" (judged over the history by checks.recovery) or "requests" (check_timing)."""
        return RECOVERY if self.name == RECOVERY else "requests"

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.limit)


def parse_threshold(expr: str) -> Threshold:
    """Parse ``[name:]metric op value[%]``; ValueError says what is wrong and how to fix it."""
    m = _RE.match(expr) if isinstance(expr, str) else None
    if m is None:
        raise ValueError(
            f"bad threshold {expr!r}: expected [name:]metric<op>value with op one of "
            f"<, <=, >, >=, e.g. 'echo:p95<50', 'failures<0.1%', 'rps>100'")
    metric = m["metric"].lower()
    if (m["name"] or "").strip() == RECOVERY:
        return _recovery_threshold(expr, metric, m)
    if m["pct"] in ("s", "ms"):
        raise ValueError(f"bad threshold {expr!r}: request times are in milliseconds, written without a unit")
    percentile = None
    pm = _PERCENTILE.match(metric)
    if pm:
        percentile = float(pm[1])
        if not 0 < percentile <= 100:
            raise ValueError(f"bad threshold {expr!r}: percentile {pm[1]} is not in (0, 100]")
    elif metric not in ("avg", "min", "max", "rps", "failures"):
        raise ValueError(f"bad threshold {expr!r}: unknown metric {m['metric']!r}; use {_METRICS}")
    limit = float(m["value"])
    if m["pct"]:
        if metric != "failures":
            raise ValueError(f"bad threshold {expr!r}: '%' only applies to failures")
        limit /= 100.0
    return Threshold(expr.strip(), (m["name"] or AGGREGATED).strip(), metric, m["op"], limit,
                     percentile)


def _recovery_threshold(expr: str, metric: str, m: re.Match[str]) -> Threshold:
    """`recovery:max<10s`, `recovery:p95<2500ms`, `recovery:lost<1` (limit in seconds or identities)."""
    if metric not in RECOVERY_METRICS:
        raise ValueError(f"bad threshold {expr!r}: unknown recovery metric {m['metric']!r}; "
                         f"use {', '.join(RECOVERY_METRICS)} (e.g. 'recovery:max<10s', 'recovery:lost<1')")
    limit, unit = float(m["value"]), m["pct"]
    if metric in ("lost", "missed"):
        if unit:
            raise ValueError(f"bad threshold {expr!r}: recovery:{metric} counts "
                             f"{'identities' if metric == 'lost' else 'messages'}, written without a unit")
    elif unit not in ("s", "ms"):
        raise ValueError(f"bad threshold {expr!r}: give recovery times a unit, e.g. 'recovery:{metric}<10s'")
    elif unit == "ms":
        limit /= 1000.0
    return Threshold(expr.strip(), RECOVERY, metric, m["op"], limit,
                     float(metric[1:]) if metric.startswith("p") else None)


def _percentile(table: Any, p: float) -> float | None:
    if not isinstance(table, dict):
        return None
    for key, value in table.items():
        try:
            k = float(key)
        except (TypeError, ValueError):
            continue
        if k <= 1 and p > 1:
            k *= 100  # keys given as fractions (0.95)
        if abs(k - p) < 1e-9:
            return value
    return None


def _actual(t: Threshold, entry: dict) -> float | None:
    if t.percentile is not None:
        return _percentile(entry.get("percentiles"), t.percentile)
    if t.metric == "failures":
        return entry.get("num_failures", 0) / entry["num_requests"]
    return entry.get(t.metric)


def check_timing(stats: dict, thresholds: Iterable[str | Threshold]) -> Verdict:
    """Evaluate thresholds; unknown when a named request has no samples (or no thresholds)."""
    parsed = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    parsed = [t for t in parsed if t.family != RECOVERY]  # the recovery check judges those
    anomalies: list[Anomaly] = []
    results: dict[str, dict] = {}
    known = bool(parsed)
    for t in parsed:
        entry = stats.get(t.name)
        if not isinstance(entry, dict) or not entry.get("num_requests"):
            results[t.expr] = {"valid": UNKNOWN, "reason": f"no samples for {t.name!r}"}
            known = False
            continue
        actual = _actual(t, entry)
        if actual is None:
            results[t.expr] = {"valid": UNKNOWN, "reason": f"{t.name!r} has no {t.metric}"}
            known = False
            continue
        ok = t.holds(float(actual))
        results[t.expr] = {"valid": ok, "actual": actual, "limit": t.limit}
        if not ok:
            anomalies.append(Anomaly(
                "threshold",
                f"{t.expr}: {t.name} {t.metric} is {actual:g}, limit {t.op} {t.limit:g}",
                {"threshold": t.expr, "name": t.name, "metric": t.metric, "op": t.op,
                 "limit": t.limit, "actual": actual,
                 "num_requests": entry.get("num_requests")}))
    return verdict(NAME, anomalies, {"thresholds": results}, known=known)


register(Check(name=NAME, check=check_timing, order=90, judges="requests",
               help="the --threshold SLOs over Locust's request stats"))
