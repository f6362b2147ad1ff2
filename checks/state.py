"""State sync (VERSIONED_STATE): versions only move forward by one, and tabs agree.

Judged from the recorded version runs of each connection (`ConnectionHistory.state_runs`):
a patch or ack whose version is not last + 1 (`patch_version`, `ack_version`), a patch
before any snapshot (`patch_before_snapshot`), a snapshot going backwards
(`snapshot_backwards`) or holding another state at the same version
(`snapshot_mismatch`): each connection with any is one `version` anomaly. Tabs of one
user open at the end that hold a different version or state digest: `divergence`.
"""
from __future__ import annotations

from typing import Any

from checks._common import by_user, folded_anomaly, lacks, ref
from checks.registry import Check, register
from checks.verdict import Anomaly, Verdict, verdict
from history import ConnectionHistory, History, Samples

NAME = "state"


def version_anomalies(c: ConnectionHistory) -> Samples:
    """The version anomalies in one connection's state runs."""
    found = Samples()
    prev: Any = None
    started = False
    for kind, lo, hi, t, match in c.state_runs:
        ints = type(lo) is int and type(prev) is int
        if kind == "snapshot":
            if ints and lo < prev:
                found.add({"kind": "snapshot_backwards", "version": lo, "prev": prev, "t": t})
            elif ints and lo == prev and match is False:
                found.add({"kind": "snapshot_mismatch", "version": lo, "t": t})
            started = True
        elif not started:
            found.add({"kind": "patch_before_snapshot", "version": lo, "t": t})
            started = True
        elif not (ints and lo == prev + 1):
            found.add({"kind": f"{kind}_version", "version": lo,
                       "expected": prev + 1 if type(prev) is int else None, "t": t})
        prev = hi
    return found


def connection_anomalies(c: ConnectionHistory) -> list[Anomaly]:
    """The version anomaly of one connection, if any (kept for folded ones too)."""
    found = version_anomalies(c)
    if not found:
        return []
    kinds = sorted({s["kind"] for s in found.items})
    return [Anomaly("version", f"{c.label} ({c.user}) saw {found.total} version anomal"
                               f"{'y' if found.total == 1 else 'ies'} ({', '.join(kinds)})",
                    {**ref(c), "count": found.total, "samples": found.items,
                     "truncated": c.state_overflow})]


def check_state(history: History) -> Verdict:
    missing = lacks(history, "versioned_state", "versioned state")
    if missing:
        return verdict(NAME, [], {}, known=False, reason=missing)
    anomalies: list[Anomaly] = []
    versioned = compared_users = 0
    for c in history.connections:
        versioned += bool(c.state_runs)
        anomalies += connection_anomalies(c)
    found = history.folded.findings.get("version")
    if found:
        anomalies.append(folded_anomaly("version", found, "saw version anomalies"))
    for user, conns in by_user(history).items():
        tabs = [c for c in conns if c.open_at_end and c.state_runs]
        if len(tabs) < 2:
            continue
        compared_users += 1
        finals = {(repr(c.version), c.state_digest) for c in tabs}
        if len(finals) > 1:
            anomalies.append(Anomaly(
                "divergence", f"user {user}: {len(tabs)} tabs open at the end hold {len(finals)} different states",
                {"user": user, "tabs": [{**ref(c), "version": c.version, "digest": c.state_digest} for c in tabs]}))
    stats = {"connections_with_state": versioned, "users_compared": compared_users}
    reason = ("the run was cut short (history incomplete)" if not history.complete
              else "" if versioned else "no connection received a state snapshot or patch")
    return verdict(NAME, anomalies, stats, known=history.complete and versioned > 0, reason=reason)


register(Check(name=NAME, check=check_state, order=60,
               help="state versions moving forward by one, tabs ending in the same state",
               connection_anomalies=connection_anomalies))
