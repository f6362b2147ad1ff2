"""Recovery: what each scheduled disruption (--disrupt) cost, and whether the clients came back.

Per disruption in `History.disruptions` that ran (its `started_at` is set):
- connections lost: open at its start and closed, not by the client, between its start and
  WINDOW seconds after its end;
- per identity (`user`) that lost one: the seconds from its first loss until a connection of
  it was open again (p50/p95/max over identities, the slowest one named);
- identities that never had a connection open again before the run ended: FAIL, named;
- the reconnect storm: connections opened per second (1 s bins from the disruption's start
  to WINDOW after its end: `storm_per_s`, what the recovery plot draws), its peak and when;
- what became of the messages published while the lost connections were gone
  (`outage_messages`): per identity that came back, per channel it had and sender its next
  connection heard from, the owed counters (checks.loss.owed) before the first one the next
  connection got were `missed`: after the last one the lost connection got from that sender, or
  all of them for a sender that began publishing after the loss (stamps name the sending
  connection, so a sender that reconnected is a new stream); counters both got were
  `duplicated`; `replayed` is what the next connections' resumes replayed. Missed messages
  are the disruption's cost, attributed to it, not a loss FAIL (the loss check judges each
  connection on its own and owes none of them to either); `recovery:missed<1` makes them fail
  the run. A connection that resumed without announcing a gap (RESUME) but missed messages is a
  FAIL (`resume_lost`): the server said it replayed everything and did not;
- deliver latency (p50/p95 ms) WINDOW s before, during and WINDOW s after, as the run's
  schedule cut it out of Locust's stats (socketproof/run/latency_windows.py).

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

from checks.loss import owed
from checks.registry import Check, register
from checks.timing import RECOVERY, Threshold, parse_threshold
from checks.verdict import Anomaly, Verdict, verdict
from history import ConnectionHistory, History

NAME = "recovery"
WINDOW = 10.0
"""Seconds after a disruption's end in which a connection closing counts as lost to it, and
over which the reconnect storm is measured."""
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


def _next_connection(history: History, old: ConnectionHistory) -> ConnectionHistory | None:
    """The first connection of the same identity opened after `old` closed."""
    later = [c for c in history.connections if c.user == old.user and c is not old and c.opened_at is not None
             and old.closed_at is not None and c.opened_at >= old.closed_at]
    return min(later, key=lambda c: c.opened_at or 0.0, default=None)


def outage_messages(history: History, lost: list[ConnectionHistory]) -> tuple[dict, list[dict]]:
    """What became of the messages published while `lost` connections were gone: missed,
    duplicated and replayed counts, and the streams that missed messages after a resume that
    announced no gap (evidence for `resume_lost`)."""
    missed = duplicated = replayed = streams = 0
    unannounced: list[dict] = []
    for old in lost:
        new = _next_connection(history, old)
        if new is None:
            continue
        replayed += new.replay
        for channel, after in new.received.items():
            before = old.received.get(channel)
            if before is None and channel not in old.channels:
                continue  # not a channel the identity had before the disruption
            for sender, got_after in after.senders.items():
                record = history.published.get(sender, {}).get(channel)
                owed_counters = owed(history, record) if record is not None else None
                later = got_after.received()
                if owed_counters is None or got_after.truncated or later.first is None:
                    continue
                got_before = before.senders.get(sender) if before is not None else None
                if got_before is not None:  # a sender heard from before and after: the counters in between
                    if got_before.truncated or got_before.received().last is None:
                        continue
                    earlier = got_before.received()
                    lo = earlier.last + 1
                    duplicated += sum(b - a + 1 for a, b in later.intersect(earlier.ranges()))
                elif record.first_at is not None and old.closed_at is not None and record.first_at >= old.closed_at:
                    lo = owed_counters.first or 1  # a sender that began after the loss: all before the first heard
                else:
                    continue  # published before and after: which of it was owed to the old connection is unknown
                streams += 1
                hi = later.first - 1
                gap = sum(b - a + 1 for a, b in owed_counters.intersect([[lo, hi]])) if lo <= hi else 0
                missed += gap
                if gap and new.resumed and not new.gap:
                    unannounced.append({"user": old.user, "lost": old.label, "resumed": new.label, "channel": channel,
                                        "sender": sender, "missed": [lo, hi], "count": gap})
    return ({"streams_compared": streams, "missed": missed, "duplicated": duplicated, "replayed": replayed},
            unannounced)


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
        "storm_per_s": [bins.get(second, 0) for second in range(int(until - start) + 1)],
    })
    report["outage_messages"], unannounced = outage_messages(history, lost)
    if disruption.get("latency_ms"):
        report["deliver_latency_ms"] = disruption["latency_ms"]
    if unannounced:
        total = sum(u["count"] for u in unannounced)
        anomalies.append(Anomaly(
            "resume_lost",
            f"disruption {label}: {total} message(s) missed by {len({u['user'] for u in unannounced})} "
            f"identit{'y' if len(unannounced) == 1 else 'ies'} whose resume announced no gap "
            f"(e.g. {unannounced[0]['resumed']} on {unannounced[0]['channel']})",
            {"disruption": label, "count": total, "samples": unannounced[:NAMED]}))
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
    missed = sum(r["outage_messages"]["missed"] for r in reports)
    results: dict[str, dict] = {}
    for t in parsed:
        if t.metric == "lost":
            actual: float | None = float(never)
        elif t.metric == "missed":
            actual = float(missed)
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
            elif t.metric == "missed":
                each = "; ".join(f"{r['spec']}: {r['outage_messages']['missed']}" for r in reports)
                message = (f"{t.expr}: {missed:g} message(s) published while connections were gone never reached "
                           f"them ({each})")
                evidence["per_disruption"] = {r["spec"]: r["outage_messages"] for r in reports}
            else:
                worst = slowest["slowest"] if slowest else {}
                where = slowest["spec"] if slowest else None
                message = (f"{t.expr}: {t.metric} recovery {actual:g}s, limit {t.op} {t.limit:g}s; slowest "
                           f"{worst.get('user')} ({worst.get('seconds')}s to reconnect after disruption {where})")
                evidence["slowest"] = worst
                evidence["disruption"] = where
            anomalies.append(Anomaly("threshold", message, evidence))
    stats: dict = {"disruptions": reports, "lost": never, "recovery_max_s": times["max"],
                   "outage_messages_missed": missed, "thresholds": results}
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
    messages = report["outage_messages"]
    text = (f"{name}: {report['connections_lost']} connections lost, back in p50 {r['p50']}s / max {r['max']}s "
            f"(slowest {slowest.get('user')}), {report['never_back_count']} never back, "
            f"storm peak {report['storm_peak_per_s']}/s, {messages['missed']} messages missed "
            f"({messages['replayed']} replayed, {messages['duplicated']} duplicated)")
    latency = report.get("deliver_latency_ms") or {}
    if any(phase.get("p95") is not None for phase in latency.values()):
        text += ", deliver p95 " + " / ".join(
            f"{latency[p]['p95'] if latency.get(p, {}).get('p95') is not None else '-'} ms {p}"
            for p in ("before", "during", "after"))
    return text


register(Check(name=NAME, check=check_recovery, order=85, applies=applies,
               help="what each --disrupt cost: connections lost, time to reconnect, identities never back"))
