"""Recovery: what each scheduled disruption (--disrupt) cost, and whether the clients came back.

Per disruption in `History.disruptions` that ran (its `started_at` is set):
- connections lost: open at its start and closed, not by the client, between its start and
  WINDOW seconds after its end;
- per identity (`user`) that lost one: the seconds from its first loss until a connection of
  it was open again (p50/p95/max over identities, the slowest one named);
- identities that never had a connection open again before the run ended: FAIL, named;
- the reconnect storm: connections opened per second (1 s bins from the disruption's start
  to WINDOW after its end), its peak and when;
- messages published during the outage: UNKNOWN (the history keeps publish times per sender
  and channel, not per message, so stamps cannot be placed inside the window).

A disruption that failed (a `run` command's non-zero exit, a restart that did not come up) is a
FAIL with its detail. Thresholds of the recovery family (checks.timing: `recovery:max<10s`,
`recovery:p95<5s`, `recovery:lost<1`) are judged here, over every disruption together.
UNKNOWN when the history is incomplete, or when the recorder folded closed connections and
an identity seems not to have come back (its reconnection may be among them). Applies only
to runs with at least one disruption.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from checks.registry import Check, register
from checks.timing import RECOVERY, Threshold, parse_threshold
from checks.verdict import UNKNOWN, Anomaly, Verdict, verdict
from history import ConnectionHistory, History

NAME = "recovery"
WINDOW = 10.0
"""Seconds after a disruption's end in which a connection closing counts as lost to it, and
over which the reconnect storm is measured."""
OUTAGE_MESSAGES = "unknown: the history keeps publish times per sender and channel, not per message"
NAMED = 20
"""Identities named in one anomaly's evidence."""


def applies(history: History) -> bool:
    return bool(history.disruptions)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100.0 * len(ordered)) - 1)]


def _lost(c: ConnectionHistory, start: float, until: float) -> bool:
    return (c.opened_at is not None and c.opened_at < start and c.closed_at is not None
            and start <= c.closed_at <= until and c.close_initiator != "client")


def disruption_report(history: History, disruption: dict) -> tuple[dict, list[Anomaly], list[float]]:
    """One disruption's figures, the anomalies it proves, and each identity's recovery seconds."""
    start = float(disruption["started_at"])
    end = float(disruption.get("ended_at") or start)
    until = end + WINDOW
    label = disruption.get("spec") or f"{disruption.get('at')}:{disruption.get('action')}"
    report = {key: disruption.get(key) for key in ("spec", "at", "action", "result", "exit_code", "detail",
                                                     "started_at", "ended_at")}
    anomalies: list[Anomaly] = []
    if disruption.get("result") == "failed":
        anomalies.append(Anomaly("disruption_failed", f"disruption {label} failed: {disruption.get('detail') or ''}",
                                 {"disruption": label, "exit_code": disruption.get("exit_code"),
                                  "detail": disruption.get("detail")}))
    lost = [c for c in history.connections if _lost(c, start, until)]
    first_loss: dict[str, float] = {}
    for c in lost:
        first_loss[c.user] = min(first_loss.get(c.user, math.inf), float(c.closed_at))  # type: ignore[arg-type]
    back: dict[str, float] = {}
    for c in history.connections:
        lost_at = first_loss.get(c.user)
        if lost_at is not None and c.opened_at is not None and c.opened_at >= lost_at:
            back[c.user] = min(back.get(c.user, math.inf), c.opened_at - lost_at)
    never = sorted(set(first_loss) - set(back))
    times = list(back.values())
    slowest = max(back, key=lambda user: back[user]) if back else None
    opened = [c.opened_at - start for c in history.connections
              if c.opened_at is not None and start <= c.opened_at <= until]
    bins: dict[int, int] = {}
    for offset in opened:
        bins[int(offset)] = bins.get(int(offset), 0) + 1
    peak_at = max(bins, key=lambda second: (bins[second], -second)) if bins else None
    report.update({
        "connections_lost": len(lost),
        "identities_lost": len(first_loss),
        "recovered": len(back),
        "recovery_s": {"p50": _round(percentile(times, 50)), "p95": _round(percentile(times, 95)),
                       "max": _round(max(times) if times else None)},
        "slowest": {"user": slowest, "seconds": _round(back[slowest]), "lost_at": first_loss[slowest]}
        if slowest is not None else None,
        "never_back": never[:NAMED],
        "never_back_count": len(never),
        "storm_connects": len(opened),
        "storm_peak_per_s": bins[peak_at] if peak_at is not None else 0,
        "storm_peak_at_s": peak_at,
        "outage_messages": OUTAGE_MESSAGES,
    })
    if never and not history.folded.connections:
        anomalies.append(Anomaly(
            "never_reconnected",
            f"disruption {label}: {len(never)} identit{'y' if len(never) == 1 else 'ies'} never had a connection "
            f"open again before the run ended: {', '.join(never[:5])}{' ...' if len(never) > 5 else ''}",
            {"disruption": label, "users": never[:NAMED], "count": len(never),
             "lost_at": {user: first_loss[user] for user in never[:NAMED]}, "run_ended_at": history.ended_at}))
    return report, anomalies, times


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def check_recovery(history: History, thresholds: Iterable[str | Threshold] = ()) -> Verdict:
    """Judge every disruption that ran, and the recovery thresholds over all of them."""
    parsed = [t if isinstance(t, Threshold) else parse_threshold(t) for t in thresholds]
    parsed = [t for t in parsed if t.family == RECOVERY]
    ran = [d for d in history.disruptions if d.get("started_at") is not None]
    anomalies: list[Anomaly] = []
    reports = []
    all_times: list[float] = []
    for disruption in ran:
        report, found, times_of = disruption_report(history, disruption)
        reports.append(report)
        anomalies += found
        all_times += times_of
    slowest = max((r for r in reports if r["slowest"]), key=lambda r: r["slowest"]["seconds"], default=None)
    times = {"max": max((r["recovery_s"]["max"] for r in reports if r["recovery_s"]["max"] is not None),
                        default=None)}
    never = sum(r["never_back_count"] for r in reports)
    results: dict[str, dict] = {}
    for t in parsed:
        if t.metric == "lost":
            actual: float | None = float(never)
        elif t.metric == "max":
            actual = times["max"]
        else:  # p50 / p95: over every identity's recovery, all disruptions together
            actual = _round(percentile(all_times, t.percentile or 0.0))
        if actual is None:  # no connection was lost: nothing to recover, the limit holds
            results[t.expr] = {"valid": True, "actual": None, "limit": t.limit, "note": "no connection lost"}
            continue
        ok = t.holds(actual)
        results[t.expr] = {"valid": ok, "actual": actual, "limit": t.limit}
        if not ok:
            evidence = {"threshold": t.expr, "metric": t.metric, "op": t.op, "limit": t.limit, "actual": actual}
            if t.metric == "lost":
                names = sorted({u for r in reports for u in r["never_back"]})
                message = f"{t.expr}: {never:g} identities never came back ({', '.join(names[:5])})"
                evidence["users"] = names[:NAMED]
            else:
                worst = slowest["slowest"] if slowest else {}
                where = slowest["spec"] if slowest else None
                message = (f"{t.expr}: {t.metric} recovery {actual:g}s, limit {t.op} {t.limit:g}s; slowest "
                           f"{worst.get('user')} ({worst.get('seconds')}s to reconnect after disruption {where})")
                evidence["slowest"] = worst
                evidence["disruption"] = where
            anomalies.append(Anomaly("threshold", message, evidence))
    stats: dict = {"disruptions": reports, "lost": never, "recovery_max_s": times["max"],
                   "outage_messages": UNKNOWN, "thresholds": results}
    if slowest is not None:
        stats["slowest"] = {**slowest["slowest"], "disruption": slowest["spec"]}
    if reports:
        stats["summary"] = "; ".join(_summary(r) for r in reports)
    if history.folded.connections:
        stats["folded_connections"] = history.folded.connections
    reason = None
    known = history.complete and bool(ran)
    if not ran:
        reason = "no disruption ran (the run ended before its time?)"
    elif not history.complete:
        reason = "the history is incomplete"
    elif never and history.folded.connections:
        known = False
        reason = (f"{never} identities seem not to have come back, but {history.folded.connections} closed "
                  "connections were folded (their reconnections may be among them)")
    return verdict(NAME, anomalies, stats, known=known, reason=reason)


def _summary(report: dict) -> str:
    """`8s restart: 12 connections lost, back in p50 0.6s / max 1.1s (alice), 0 never back, storm peak 9/s`."""
    name = f"{str(report.get('spec') or '').partition(':')[0]} {report.get('action')}"
    if not report["connections_lost"]:
        return f"{name}: {report.get('result')}, no connection lost"
    r = report["recovery_s"]
    slowest = report["slowest"] or {}
    return (f"{name}: {report['connections_lost']} connections lost, back in p50 {r['p50']}s / max {r['max']}s "
            f"(slowest {slowest.get('user')}), {report['never_back_count']} never back, "
            f"storm peak {report['storm_peak_per_s']}/s")


register(Check(name=NAME, check=check_recovery, order=85, applies=applies,
               help="what each --disrupt cost: connections lost, time to reconnect, identities never back"))
