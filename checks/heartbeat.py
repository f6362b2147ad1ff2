"""Heartbeat: the server keeps every connection alive at a steady interval, and no live
client is dropped for a missed pong.

The interval judged against is the one the connection's protocol announced; when none
was announced (e.g. a plain WebSocket server pinging every N s), the run's observed one:
the median of the mean ping intervals of the connections that got two or more pings.
For each connection that lived more than two such intervals:
- announced: it got pings at all (`no_pings`); the mean, min and max interval and the
  silences from opening to the first ping and from the last ping to the end are within
  `tolerance` (a fraction) of the interval (`interval_mean`, `interval_min`,
  `interval_max`, `ping_silence`); it was not closed with 1008 (`heartbeat_timeout`);
- observed: it got pings at all (`no_pings`); no gap or silence is more than `far` times
  the observed interval (`interval_max`, `ping_silence`).
- announced as a maximum silence (`heartbeat_kind` "max_silence", STOMP): every inbound
  message is a ping and a beat is owed only after a silent period (RabbitMQ checks once per
  period, so a healthy gap reaches two): it got pings at all (`no_pings`), no gap or silence is
  more than `far` times the interval (`interval_max`, `ping_silence`), no close 1008; the mean
  and the shortest gap say nothing and are not judged.
UNKNOWN when the history is incomplete, no connection lived long enough, or nothing was
announced and no pings were seen anywhere.
"""
from __future__ import annotations

import statistics

from checks._common import end_of, ref
from checks.registry import Check, register
from checks.verdict import Anomaly, Verdict, verdict
from history import MAX_SILENCE, ConnectionHistory, Folded, History

NAME = "heartbeat"


def facts(c: ConnectionHistory, end: float | None) -> dict:
    """What the check reads of one connection (`fold_facts` keeps these for folded ones)."""
    return {**ref(c), "opened_at": c.opened_at, "end": end, "interval": c.heartbeat_interval,
            "kind": c.heartbeat_kind,
            "pings": c.pings, "first_ping_at": c.first_ping_at, "last_ping_at": c.last_ping_at,
            "min": c.ping_interval_min, "max": c.ping_interval_max, "mean": c.ping_interval_mean,
            "close_code": c.close_code, "close_reason": c.close_reason, "closed_at": c.closed_at}


def irregularity(f: dict) -> float:
    """How far one connection's pings are from steady (`fold_facts` keeps the worst)."""
    interval = f.get("interval") or f.get("mean")
    life = (f["end"] - f["opened_at"]) if f.get("end") is not None and f.get("opened_at") is not None else 0.0
    if not f.get("pings"):
        return 1e9 + life  # silent: the longest-lived first
    if not interval:
        return 0.0
    silence = f.get("kind") == MAX_SILENCE and f.get("interval")
    ratios = [x / interval for x in ((f.get("max"),) if silence else (f.get("max"), f.get("mean"), f.get("min"))) if x]
    if f.get("first_ping_at") is not None and f.get("opened_at") is not None:
        ratios.append((f["first_ping_at"] - f["opened_at"]) / interval)
    if f.get("last_ping_at") is not None and f.get("end") is not None:
        ratios.append((f["end"] - f["last_ping_at"]) / interval)
    score = max([r if r >= 1 or silence else (1 / r if r > 0 else 1e6) for r in ratios], default=0.0)
    return score + (1e8 if f.get("close_code") == 1008 and f.get("interval") else 0.0)


def fold_facts(into: Folded, c: ConnectionHistory) -> None:
    """Keep a folded connection's facts if it is among the most irregular, and its mean ping
    interval when its protocol announced none (for the observed interval)."""
    f = facts(c, c.closed_at)
    f["score"] = irregularity(f)
    into.add_heartbeat([f])
    if not c.heartbeat_interval and c.ping_interval_mean:
        into.add_ping_means([c.ping_interval_mean])


def judge(f: dict, observed: float | None, tolerance: float, far: float) -> tuple[bool, list[Anomaly]]:
    """(eligible, anomalies) for one connection's facts."""
    who = f"{f['label']} ({f['user']})"
    out: list[Anomaly] = []
    announced = f.get("interval")
    if announced and f.get("close_code") == 1008:
        out.append(Anomaly("heartbeat_timeout", f"{who} was closed with 1008 (heartbeat timeout) although "
                                                f"the client answers pings",
                           {**_base(f), "close_code": 1008, "close_reason": f.get("close_reason"),
                            "closed_at": f.get("closed_at"), "last_ping_at": f.get("last_ping_at")}))
    interval = announced if announced and announced > 0 else observed
    if not interval or f.get("opened_at") is None or f.get("end") is None:
        return False, out
    life = f["end"] - f["opened_at"]
    if life <= 2 * interval:
        return False, out
    silent = bool(announced) and f.get("kind") == MAX_SILENCE
    source = "advertised max silence" if silent else "advertised" if announced else "observed"
    base = {**_base(f), "interval": interval, "interval_source": source}
    if not f["pings"]:
        out.append(Anomaly("no_pings", f"{who} lived {life:.1f}s with no server "
                                       f"{'frame' if silent else 'ping'} ({source} interval {interval:.2f}s)", base))
        return True, out
    if announced and not silent:
        lo, hi = interval * (1 - tolerance), interval * (1 + tolerance)
        base["tolerance"] = tolerance
        mean, low = f.get("mean"), f.get("min")
        if mean is not None and not lo <= mean <= hi:
            out.append(Anomaly("interval_mean", f"{who}: mean ping interval {mean:.2f}s, advertised "
                                                f"{interval}s", {**base, "mean": mean}))
        if low is not None and low < lo:
            out.append(Anomaly("interval_min", f"{who}: pings only {low:.2f}s apart, advertised {interval}s",
                               {**base, "min": low}))
    else:
        hi = interval * far
        base["far"] = far
    high = f.get("max")
    if high is not None and high > hi:
        out.append(Anomaly("interval_max", f"{who}: {high:.2f}s between pings, {source} interval "
                                           f"{interval:.2f}s", {**base, "max": high}))
    head = f["first_ping_at"] - f["opened_at"] if f.get("first_ping_at") is not None else None
    tail = f["end"] - f["last_ping_at"] if f.get("last_ping_at") is not None else None
    for where, silence in (("before the first ping", head), ("after the last ping", tail)):
        if silence is not None and silence > hi:
            out.append(Anomaly("ping_silence", f"{who}: {silence:.2f}s {where}, {source} interval "
                                               f"{interval:.2f}s",
                               {**base, "silence": silence, "where": where,
                                "first_ping_at": f.get("first_ping_at"), "last_ping_at": f.get("last_ping_at")}))
    return True, out


def _base(f: dict) -> dict:
    return {k: f.get(k) for k in ("user", "label", "conn_id", "process", "opened_at", "end", "pings")}


def observed_interval(history: History) -> float | None:
    """The median mean ping interval of connections without an announced one."""
    means = [c.ping_interval_mean for c in history.connections
             if not c.heartbeat_interval and c.ping_interval_mean]
    means += list(history.folded.ping_means)
    return statistics.median(means) if means else None


def check_heartbeat(history: History, tolerance: float = 0.5, far: float = 3.0,
                    expected_interval: float | None = None) -> Verdict:
    """`expected_interval` (--heartbeat-interval): what the user says the server's ping interval
    is, for a protocol that announces none; judged like an announced one (a server that stops
    pinging then fails instead of leaving the check UNKNOWN)."""
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in [0, 1), got {tolerance}")
    if far <= 1:
        raise ValueError(f"far must be above 1, got {far}")
    observed = observed_interval(history)
    anomalies: list[Anomaly] = []
    eligible = pings = announced = 0
    everything = [facts(c, end_of(c, history)) for c in history.connections] + list(history.folded.heartbeat)
    if expected_interval is not None and expected_interval > 0:
        everything = [f if f.get("interval") else {**f, "interval": expected_interval} for f in everything]
    for f in everything:
        pings += f.get("pings") or 0
        announced += bool(f.get("interval"))
        ok, found = judge(f, observed, tolerance, far)
        eligible += ok
        anomalies += found
    stats = {"connections_checked": eligible, "pings": pings, "tolerance": tolerance,
             "announced": announced, "observed_interval": observed}
    return verdict(NAME, anomalies, stats, known=history.complete and eligible > 0,
                   reason=_reason(history, eligible, announced, observed, pings))


def _reason(history: History, eligible: int, announced: int, observed: float | None, pings: int) -> str:
    if not history.complete:
        return "the run was cut short (history incomplete)"
    if not announced and observed is None:
        return (f"the {history.adapter_name} adapter announces no heartbeat and the server sent "
                f"{'too few pings to measure an interval' if pings else 'no pings'}")
    if not eligible:
        return "no connection lived longer than two heartbeat intervals"
    return ""


register(Check(name=NAME, check=check_heartbeat, order=50,
               help="steady server pings, no live client dropped",
               fold=fold_facts))
