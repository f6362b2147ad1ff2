"""Duplicates: no stamp, and (SERVER_SEQ) no server seq, delivered twice on one connection
and channel. Replays after a reconnect count: a replayed message a connection already got
live is a duplicate.

UNKNOWN when the history is incomplete or no stamped or sequenced delivery was recorded.
"""
from __future__ import annotations

from checks._common import folded_anomaly, lacks, ref
from checks.registry import Check, register
from checks.streams import analyse
from checks.verdict import Anomaly, Verdict, verdict
from history import ConnectionHistory, History

NAME = "duplicates"


def connection_anomalies(c: ConnectionHistory) -> list[Anomaly]:
    """The duplicates one connection proves on its own (kept for folded ones too)."""
    stamps: list[dict] = []
    stamp_total = 0
    seqs: list[dict] = []
    seq_total = 0
    for channel, record in c.received.items():
        for sender, arrivals in record.senders.items():
            facts = analyse(arrivals)
            if facts.duplicates:
                stamp_total += facts.duplicates
                stamps += [{"channel": channel, "sender": sender, "counter": s["value"],
                            "count": s["count"], "t": s["t"]} for s in facts.duplicate_samples]
        if record.seqs is not None:
            facts = analyse(record.seqs)
            if facts.duplicates:
                seq_total += facts.duplicates
                seqs += [{"channel": channel, "seq": s["value"], "count": s["count"], "t": s["t"]}
                         for s in facts.duplicate_samples]
    out: list[Anomaly] = []
    if seq_total:
        out.append(Anomaly("duplicate_seq", f"{c.label} ({c.user}) got {seq_total} seq(s) a second time",
                           {**ref(c), "count": seq_total, "samples": seqs[:20]}))
    if stamp_total:
        out.append(Anomaly("duplicate_stamp", f"{c.label} ({c.user}) got {stamp_total} stamp(s) a second time",
                           {**ref(c), "count": stamp_total, "samples": stamps[:20]}))
    return out


def check_duplicates(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    stamped = sequenced = unstamped = 0
    for c in history.connections:
        anomalies += connection_anomalies(c)
        for record in c.received.values():
            unstamped += record.unstamped
            stamped += len(record.senders)
            sequenced += record.seqs is not None
    for kind, what in (("duplicate_seq", "got a seq a second time"),
                       ("duplicate_stamp", "got a stamp a second time")):
        found = history.folded.findings.get(kind)
        if found:
            anomalies.append(folded_anomaly(kind, found, what))
    dup_seqs = sum(a.evidence["count"] for a in anomalies if a.kind == "duplicate_seq")
    dup_stamps = sum(a.evidence["count"] for a in anomalies if a.kind == "duplicate_stamp")
    stats = {"connections": len(history.connections), "folded_connections": history.folded.connections,
             "sender_streams": stamped, "seq_streams": sequenced, "duplicate_seqs": dup_seqs,
             "duplicate_stamps": dup_stamps, "unstamped_deliveries": unstamped}
    seq_reason = lacks(history, "server_seq", "server sequence numbers")
    if seq_reason:
        stats["seq_duplicates"] = f"not judged: {seq_reason}"
    judged = stamped + sequenced > 0 or history.folded.deliveries > 0
    reason = ("the run was cut short (history incomplete)" if not history.complete
              else "" if judged else "no stamped delivery was recorded"
              + (f" ({unstamped} without a stamp)" if unstamped else ""))
    return verdict(NAME, anomalies, stats, known=history.complete and judged, reason=reason)


register(Check(name=NAME, check=check_duplicates, order=20,
               help="no stamp or server seq delivered twice to one connection",
               connection_anomalies=connection_anomalies))
