"""Ordering: FIFO per sender at every receiver; with server seqs, one order per channel.

- `fifo` (every adapter): on one connection and channel, a sender's stamp counters
  arrive in increasing order; a counter below one already seen (not a duplicate) is late.
- `out_of_order` (SERVER_SEQ): on one connection and channel, server seqs increase.
- `tab_divergence` (SERVER_SEQ): connections of one channel (in one server era, see
  `_common.eras`) carry the same message at the same seq (compared on thinned seq_ids).

UNKNOWN when the history is incomplete or no stamped or sequenced delivery was recorded.
"""
from __future__ import annotations

from checks._common import eras, folded_anomaly, lacks, ref, seq_views
from checks.registry import Check, register
from checks.streams import analyse
from checks.verdict import Anomaly, Verdict, verdict
from history import ConnectionHistory, History

NAME = "ordering"


def connection_anomalies(c: ConnectionHistory) -> list[Anomaly]:
    """The order anomalies one connection proves on its own (kept for folded ones too)."""
    out: list[Anomaly] = []
    fifo: list[dict] = []
    fifo_total = 0
    seq: list[dict] = []
    seq_total = 0
    for channel, record in c.received.items():
        for sender, arrivals in record.senders.items():
            facts = analyse(arrivals)
            if facts.late:
                fifo_total += facts.late
                fifo += [{"channel": channel, "sender": sender, "counter": s["value"], "late": s["count"],
                          "after": s["prev"], "t": s["t"]} for s in facts.late_samples]
        if record.seqs is not None:
            facts = analyse(record.seqs)
            if facts.late:
                seq_total += facts.late
                seq += [{"channel": channel, "seq": s["value"], "late": s["count"], "after": s["prev"],
                         "t": s["t"]} for s in facts.late_samples]
    if fifo_total:
        out.append(Anomaly("fifo", f"{c.label} ({c.user}) got {fifo_total} message(s) from a sender "
                                   f"after a later one of the same sender",
                           {**ref(c), "count": fifo_total, "samples": fifo[:20]}))
    if seq_total:
        out.append(Anomaly("out_of_order", f"{c.label} ({c.user}) got {seq_total} message(s) with a seq "
                                           f"below one already seen",
                           {**ref(c), "count": seq_total, "samples": seq[:20]}))
    return out


def _divergence(history: History) -> tuple[list[Anomaly], int]:
    anomalies: list[Anomaly] = []
    compared = 0
    for channel, views in seq_views(history).items():
        for era in eras(views):
            seen: dict[int, tuple] = {}
            for v in era:
                if v.record is None or v.conn is None:
                    continue
                for seq, mid in v.record.seq_ids.items():
                    first = seen.get(seq)
                    if first is None:
                        seen[seq] = (mid, v.conn)
                        continue
                    compared += 1
                    if first[0] != mid:
                        other = first[1]
                        anomalies.append(Anomaly(
                            "tab_divergence",
                            f"channel {channel}: seq {seq} is {first[0]!r} on {other.label} "
                            f"but {mid!r} on {v.conn.label}",
                            {"channel": channel, "seq": seq,
                             "ids": [{**ref(other), "id": first[0]}, {**ref(v.conn), "id": mid}]}))
    return anomalies, compared


def check_ordering(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    stamped = sequenced = unstamped = truncated = 0
    for c in history.connections:
        anomalies += connection_anomalies(c)
        for record in c.received.values():
            unstamped += record.unstamped
            for arrivals in record.senders.values():
                stamped += 1
                truncated += arrivals.truncated
            if record.seqs is not None:
                sequenced += 1
                truncated += record.seqs.truncated
    for kind, what in (("fifo", "got messages of a sender out of its order"),
                       ("out_of_order", "got seqs below one already seen")):
        found = history.folded.findings.get(kind)
        if found:
            anomalies.append(folded_anomaly(kind, found, what))
    divergent, compared = _divergence(history)
    anomalies += divergent
    seq_reason = lacks(history, "server_seq", "server sequence numbers")
    stats = {"connections": len(history.connections), "folded_connections": history.folded.connections,
             "sender_streams": stamped, "seq_streams": sequenced, "unstamped_deliveries": unstamped,
             "truncated_streams": truncated, "tab_seqs_compared": compared}
    if seq_reason:
        stats["seq_order"] = f"not judged: {seq_reason}"
    judged = stamped + sequenced > 0 or history.folded.deliveries > 0
    return verdict(NAME, anomalies, stats, known=history.complete and judged,
                   reason=_reason(history, judged, unstamped))


def _reason(history: History, judged: bool, unstamped: int) -> str:
    if not history.complete:
        return "the run was cut short (history incomplete)"
    if not judged:
        if unstamped:
            return f"{unstamped} deliveries carried no stamp and no server seq: nothing to order"
        return "no stamped delivery was recorded"
    return ""


register(Check(name=NAME, check=check_ordering, order=10,
               help="messages in each sender's order, server seqs increasing, tabs agreeing",
               connection_anomalies=connection_anomalies))
