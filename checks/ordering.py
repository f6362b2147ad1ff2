"""Ordering: one total order per user, FIFO per sender, the same order on every tab.

- per connection, seqs strictly increase (a seq below the highest seen, not a
  duplicate, is out of order);
- per sender label, message id counters increase on each connection;
- tabs of one user (in one server era, see `_common.eras`) carry the same message id
  at the same seq (compared on the thinned `seq_ids`).
"""
from __future__ import annotations

from checks._common import by_user, eras, ref
from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "ordering"


def check_ordering(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    messages = 0
    compared = 0
    for c in history.connections:
        messages += c.messages
        if c.out_of_order:
            anomalies.append(Anomaly(
                "out_of_order",
                f"{c.label} ({c.user}) got {c.out_of_order.total} message(s) with a seq "
                f"below one already seen",
                {**ref(c), "count": c.out_of_order.total, "samples": c.out_of_order.items}))
        if c.fifo_violations:
            anomalies.append(Anomaly(
                "fifo",
                f"{c.label} ({c.user}) got {c.fifo_violations.total} message(s) from a sender "
                f"after a later one of the same sender",
                {**ref(c), "count": c.fifo_violations.total, "samples": c.fifo_violations.items}))
        if c.malformed:
            anomalies.append(Anomaly(
                "malformed_message",
                f"{c.label} ({c.user}) got {c.malformed.total} message frame(s) without an "
                f"integer seq",
                {**ref(c), "count": c.malformed.total, "samples": c.malformed.items}))
    for user, conns in by_user(history).items():
        for era in eras(conns):
            seen: dict[int, tuple] = {}
            for c in era:
                for seq, mid in c.seq_ids.items():
                    first = seen.get(seq)
                    if first is None:
                        seen[seq] = (mid, c)
                        continue
                    compared += 1
                    if first[0] != mid:
                        other = first[1]
                        anomalies.append(Anomaly(
                            "tab_divergence",
                            f"user {user}: seq {seq} is {first[0]!r} on {other.label} "
                            f"but {mid!r} on {c.label}",
                            {"user": user, "seq": seq,
                             "ids": [{**ref(other), "id": first[0]}, {**ref(c), "id": mid}]}))
    stats = {"connections": len(history.connections), "messages": messages,
             "tab_seqs_compared": compared}
    return verdict(NAME, anomalies, stats, known=history.complete and messages > 0)
