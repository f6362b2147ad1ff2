"""Loss: every acked seq for user U reaches the connections of U that should see it.

- A connection open at the end of the run must hold every seq in
  [expect_from, max(highest acked seq of U, its own last_seq)], except the range its
  welcome announced as a gap (counted as `announced`, not lost).
- A connection closed before the end must have no hole between expect_from and its
  last received seq (announced gap excepted).
- Acked seqs of U above every connection's coverage while U had no connection open
  at the end are still queued server-side: stats `undelivered_at_end`, not a loss.

Unknown when the history is incomplete (holes in connections closed before the end
are still proof), when acks name a user with no connection history at all, or when
the server forgot a user mid-run (its seqs restarted, so acks are ambiguous).
"""
from __future__ import annotations

from checks._common import by_user, clip, count, eras, ref, subtract
from checks.history import History
from checks.verdict import Anomaly, Verdict, verdict

NAME = "loss"


def check_loss(history: History) -> Verdict:
    anomalies: list[Anomaly] = []
    groups = by_user(history)
    acked_total = lost = announced = undelivered = checked = 0
    no_history: list[str] = []
    reset_users: list[str] = []
    for user, acked in history.acks.items():
        acked_total += acked.count()
        if user not in groups:
            no_history.append(user)
    for user, conns in groups.items():
        acked = history.acks.get(user)
        max_acked = acked.last if acked else None
        if len(eras(conns)) > 1:
            reset_users.append(user)
            max_acked = None  # acks cannot be placed in an era; check holes only
        any_open = False
        coverage = 0
        for c in conns:
            coverage = max(coverage, c.last_seq or 0, (c.expect_from or 1) - 1)
            if c.expect_from is None:
                continue
            if c.open_at_end:
                any_open = True
                hi = max(max_acked or 0, c.last_seq or 0)
                where = "open at the end of the run"
            elif c.closed_at is not None:
                hi = c.last_seq or 0
                where = "closed before the end"
            else:
                continue  # still running in an incomplete history: no proof either way
            checked += 1
            holes, gone = subtract(c.received.missing(c.expect_from, hi), c.gap)
            announced += gone
            if holes:
                n = count(holes)
                lost += n
                anomalies.append(Anomaly(
                    "lost",
                    f"{c.label} ({user}, {where}) is missing {n} seq(s) in "
                    f"[{c.expect_from}, {hi}]",
                    {**ref(c), "missing": clip(holes), "missing_count": n,
                     "expect_from": c.expect_from, "up_to": hi, "max_acked": max_acked,
                     "gap": c.gap, "opened_at": c.opened_at, "closed_at": c.closed_at,
                     "open_at_end": c.open_at_end}))
        if not any_open and max_acked is not None and max_acked > coverage:
            undelivered += max_acked - coverage - count(acked.missing(coverage + 1, max_acked))
    stats = {"users": len(groups), "acked": acked_total, "connections_checked": checked,
             "lost": lost, "announced": announced, "undelivered_at_end": undelivered,
             "users_without_connections": sorted(no_history), "seq_reset_users": sorted(reset_users)}
    known = (history.complete and checked > 0 and not no_history and not reset_users)
    return verdict(NAME, anomalies, stats, known=known, reason=_unknown_reason(
        history, checked, no_history, reset_users))


def _unknown_reason(history: History, checked: int, no_history: list[str], reset_users: list[str]) -> str:
    """Why loss cannot be decided: said in the verdict table, so an unknown is never silent."""
    if reset_users:
        return (f"the server forgot {len(reset_users)} user(s) mid-run (seqs restarted, e.g. a restart): "
                f"messages acked before it cannot be accounted for ({', '.join(reset_users[:3])})")
    if no_history:
        return f"acks for {len(no_history)} user(s) with no recorded connection ({', '.join(no_history[:3])})"
    if not history.complete:
        return "the run was cut short (history incomplete)"
    return "no connection to check" if not checked else ""
