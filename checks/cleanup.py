"""Cleanup: after the run the server holds no more connections than before it.

Two sources, judged when present: the reference server's GET /stats bodies
(`server_stats_before/after`: connections, users, registry entries) and a generic count of
the server's open connections (`server_connections_before/after`, read by socketproof/
from a Prometheus/OpenMetrics or JSON endpoint named by --server-connections). PASS when
every count is back at (or below) its start value, FAIL (`leak`) when one is above it.
The load side takes the "after" reading once every connection closed and, for abrupt
drops, after the server's heartbeat timeout (protocol section 11).
"""
from __future__ import annotations

from checks.registry import Check, register
from checks.verdict import Anomaly, Verdict, verdict
from history import History

NAME = "cleanup"
KEYS = ("connections", "users", "registry_entries")
NO_SOURCE = "no source of the server's connection count: pass --server-connections URL#metric"


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_cleanup(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    stats: dict = {}
    judged = 0
    missing: list[str] = []
    before, after = history.server_stats_before, history.server_stats_after
    if before is not None or after is not None:
        if before is None or after is None:
            missing.append(f"no server /stats {'before' if before is None else 'after'} the run")
        else:
            stats["stats"] = {"before": {k: before.get(k) for k in KEYS}, "after": {k: after.get(k) for k in KEYS}}
            for key in KEYS:
                b, a = before.get(key), after.get(key)
                if not _number(b) or not _number(a):
                    missing.append(f"server /stats has no number for {key!r}")
                    continue
                judged += 1
                if a > b:
                    anomalies.append(Anomaly(
                        "leak", f"server /stats {key} is {a} after the run, {b} before: {a - b} left behind",
                        {"source": "/stats", "field": key, "before": b, "after": a, "leaked": a - b}))
    source = history.server_connections_source or "the server's connection count"
    b, a = history.server_connections_before, history.server_connections_after
    if b is not None or a is not None:
        stats["connection_count"] = {"source": source, "before": b, "after": a}
        if not _number(b) or not _number(a):
            missing.append(f"no reading of {source} {'before' if not _number(b) else 'after'} the run")
        else:
            judged += 1
            if a > b:
                anomalies.append(Anomaly(
                    "leak", f"{source} is {a} after the run, {b} before: {a - b} connection(s) left behind",
                    {"source": source, "field": "connections", "before": b, "after": a, "leaked": a - b}))
    if not judged and not missing:
        return verdict(NAME, anomalies, stats, known=False, reason=NO_SOURCE)
    known = history.complete and judged > 0 and not missing
    reason = "; ".join(missing) if missing else ("the run was cut short (history incomplete)"
                                                 if not history.complete else "")
    return verdict(NAME, anomalies, stats, known=known, reason=reason)


register(Check(name=NAME, check=check_cleanup, order=40,
               help="the server holds no more connections after the run than before"))
