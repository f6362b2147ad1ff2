"""State sync: versions only move forward by one, and the tabs of a user agree.

Each connection keeps a local copy of its user's state document (snapshot, then
patches and its own acked updates). Reported: every version anomaly the recorder saw
(a patch or ack whose version is not last + 1, a patch before the snapshot, a
snapshot going backwards or differing at the same version), and tabs of one user
open at the end of the run that end with a different version or state digest.
"""
from __future__ import annotations

from checks._common import by_user, ref
from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "state"


def check_state(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    versioned = compared_users = 0
    for c in history.connections:
        if c.version is not None:
            versioned += 1
        if c.version_anomalies:
            kinds = sorted({s.get("kind") for s in c.version_anomalies.items})
            anomalies.append(Anomaly(
                "version",
                f"{c.label} ({c.user}) saw {c.version_anomalies.total} version anomal"
                f"{'y' if c.version_anomalies.total == 1 else 'ies'} ({', '.join(map(str, kinds))})",
                {**ref(c), "count": c.version_anomalies.total,
                 "samples": c.version_anomalies.items}))
    for user, conns in by_user(history).items():
        tabs = [c for c in conns if c.open_at_end and c.version is not None]
        if len(tabs) < 2:
            continue
        compared_users += 1
        finals = {(c.version, c.state_digest) for c in tabs}
        if len(finals) > 1:
            anomalies.append(Anomaly(
                "divergence",
                f"user {user}: {len(tabs)} tabs open at the end hold {len(finals)} different "
                f"states",
                {"user": user, "tabs": [{**ref(c), "version": c.version,
                                         "digest": c.state_digest} for c in tabs]}))
    stats = {"connections_with_state": versioned, "users_compared": compared_users}
    return verdict(NAME, anomalies, stats, known=history.complete and versioned > 0)
