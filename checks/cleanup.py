"""Cleanup: after the run the server holds no more connections, users or registry
entries than before it (GET /stats taken around the run). The load side must take
the "after" stats once every connection closed and, for abrupt drops, after
heartbeat.interval + heartbeat.timeout (protocol section 11).
"""
from __future__ import annotations

from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "cleanup"
KEYS = ("connections", "users", "registry_entries")


def check_cleanup(history: History) -> Verdict:
    before, after = history.server_stats_before, history.server_stats_after
    anomalies: list[Anomaly] = []
    stats: dict = {"before": None, "after": None}
    if before is None or after is None:
        missing = "before" if before is None else "after"
        reason = f"no server /stats {missing} the run (needs an admin token: --admin-token or the JWT secret)"
        return verdict(NAME, anomalies, stats, known=False, reason=reason)
    stats = {"before": {k: before.get(k) for k in KEYS}, "after": {k: after.get(k) for k in KEYS}}
    known = history.complete
    for key in KEYS:
        b, a = before.get(key), after.get(key)
        if not isinstance(b, (int, float)) or not isinstance(a, (int, float)):
            known = False
            continue
        if a > b:
            anomalies.append(Anomaly(
                "leak",
                f"server /stats {key} is {a} after the run, {b} before: {a - b} left behind",
                {"field": key, "before": b, "after": a, "leaked": a - b}))
    return verdict(NAME, anomalies, stats, known=known, reason=None if known else "the run was cut short")
