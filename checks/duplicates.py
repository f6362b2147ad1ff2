"""Duplicates: no seq and no message id delivered twice on one connection.

Replays after a reconnect count: a replayed message a connection already got live
is a duplicate. A repeated id is seen as the same sender counter arriving again
right after itself under a new seq (see checks.history on message ids).
"""
from __future__ import annotations

from checks._common import ref
from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "duplicates"


def check_duplicates(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    messages = dup_seqs = dup_ids = 0
    for c in history.connections:
        messages += c.messages
        if c.duplicates:
            dup_seqs += c.duplicates.total
            anomalies.append(Anomaly(
                "duplicate_seq",
                f"{c.label} ({c.user}) got {c.duplicates.total} seq(s) a second time",
                {**ref(c), "count": c.duplicates.total, "samples": c.duplicates.items}))
        if c.duplicate_ids:
            dup_ids += c.duplicate_ids.total
            anomalies.append(Anomaly(
                "duplicate_id",
                f"{c.label} ({c.user}) got {c.duplicate_ids.total} message id(s) a second "
                f"time under a new seq",
                {**ref(c), "count": c.duplicate_ids.total, "samples": c.duplicate_ids.items}))
    stats = {"connections": len(history.connections), "messages": messages,
             "duplicate_seqs": dup_seqs, "duplicate_ids": dup_ids}
    return verdict(NAME, anomalies, stats, known=history.complete and messages > 0)
