"""Ordering: one total order per user, FIFO per sender, the same order on every tab.

- per connection, seqs strictly increase (a seq below the highest seen, not a
  duplicate, is out of order);
- per sender label, message id counters increase on each connection;
- tabs of one user (in one server era, see `_common.eras`) carry the same message id
  at the same seq (compared on the thinned `seq_ids`).
"""
from __future__ import annotations

from checks._common import by_user, counted, eras, ref
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
            anomalies.append(counted("out_of_order", c, c.out_of_order,
                                     "message(s) with a seq below one already seen"))
        if c.fifo_violations:
            anomalies.append(counted("fifo", c, c.fifo_violations,
                                     "message(s) from a sender after a later one of the same sender"))
        if c.malformed:
            anomalies.append(counted("malformed_message", c, c.malformed,
                                     "message frame(s) without an integer seq"))
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
