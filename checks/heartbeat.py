"""Heartbeat: the server pings every advertised interval, and no live client is
dropped for a missed pong.

For each connection that lived more than two advertised intervals: it got pings at
all; the mean, min and max interval between pings, and the silences from opening to
the first ping and from the last ping to the end, are within `tolerance` (a fraction)
of the advertised interval. No connection was closed with 1008 (heartbeat timeout):
the clients answer every ping.
"""
from __future__ import annotations

from checks._common import end_of, ref
from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "heartbeat"


def check_heartbeat(history: History, tolerance: float = 0.5) -> Verdict:
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in [0, 1), got {tolerance}")
    anomalies: list[Anomaly] = []
    eligible = pings = 0
    for c in history.connections:
        if c.close_code == 1008:
            anomalies.append(Anomaly(
                "heartbeat_timeout",
                f"{c.label} ({c.user}) was closed with 1008 (heartbeat timeout) although "
                f"the client answers pings",
                {**ref(c), "close_code": c.close_code, "close_reason": c.close_reason,
                 "closed_at": c.closed_at, "pings": c.pings, "last_ping_at": c.last_ping_at}))
        interval = c.heartbeat_interval
        end = end_of(c, history)
        if not interval or interval <= 0 or c.opened_at is None or end is None:
            continue
        life = end - c.opened_at
        if life <= 2 * interval:
            continue
        eligible += 1
        pings += c.pings
        lo, hi = interval * (1 - tolerance), interval * (1 + tolerance)
        base = {**ref(c), "interval": interval, "tolerance": tolerance, "opened_at": c.opened_at,
                "end": end, "pings": c.pings}
        if c.pings == 0:
            anomalies.append(Anomaly(
                "no_pings", f"{c.label} ({c.user}) lived {life:.1f}s with no server ping "
                f"(advertised interval {interval}s)", base))
            continue
        mean = c.ping_interval_mean
        if mean is not None and not lo <= mean <= hi:
            anomalies.append(Anomaly(
                "interval_mean", f"{c.label} ({c.user}): mean ping interval {mean:.2f}s, "
                f"advertised {interval}s", {**base, "mean": mean}))
        if c.ping_interval_min is not None and c.ping_interval_min < lo:
            anomalies.append(Anomaly(
                "interval_min", f"{c.label} ({c.user}): pings only {c.ping_interval_min:.2f}s "
                f"apart, advertised {interval}s", {**base, "min": c.ping_interval_min}))
        if c.ping_interval_max is not None and c.ping_interval_max > hi:
            anomalies.append(Anomaly(
                "interval_max", f"{c.label} ({c.user}): {c.ping_interval_max:.2f}s between "
                f"pings, advertised {interval}s", {**base, "max": c.ping_interval_max}))
        head = c.first_ping_at - c.opened_at if c.first_ping_at is not None else None
        tail = end - c.last_ping_at if c.last_ping_at is not None else None
        for where, silence in (("before the first ping", head), ("after the last ping", tail)):
            if silence is not None and silence > hi:
                anomalies.append(Anomaly(
                    "ping_silence", f"{c.label} ({c.user}): {silence:.2f}s {where}, "
                    f"advertised {interval}s",
                    {**base, "silence": silence, "where": where,
                     "first_ping_at": c.first_ping_at, "last_ping_at": c.last_ping_at}))
    stats = {"connections_checked": eligible, "pings": pings, "tolerance": tolerance}
    return verdict(NAME, anomalies, stats, known=history.complete and eligible > 0)
