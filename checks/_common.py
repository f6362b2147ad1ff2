"""Helpers shared by the checkers (grouping connections, evidence, eras)."""
from __future__ import annotations

from collections import defaultdict

from checks.history import ConnectionHistory, History, Samples
from checks.verdict import Anomaly


def ref(c: ConnectionHistory) -> dict:
    """The evidence fields that name a connection."""
    return {"user": c.user, "label": c.label, "conn_id": c.conn_id, "process": c.process}


def counted(kind: str, c: ConnectionHistory, found: Samples, what: str) -> Anomaly:
    """The anomaly for `found` (a count with samples) on one connection: "<label> (<user>) got <n> <what>"."""
    return Anomaly(kind, f"{c.label} ({c.user}) got {found.total} {what}",
                   {**ref(c), "count": found.total, "samples": found.items})


def by_user(history: History) -> dict[str, list[ConnectionHistory]]:
    """Connections grouped by user, each group ordered by opening time."""
    groups: dict[str, list[ConnectionHistory]] = defaultdict(list)
    for c in history.connections:
        groups[c.user].append(c)
    for conns in groups.values():
        conns.sort(key=lambda c: (c.opened_at is None, c.opened_at or 0.0, c.label))
    return dict(groups)


def eras(conns: list[ConnectionHistory]) -> list[list[ConnectionHistory]]:
    """Split one user's connections (ordered by opened_at) where the server forgot the user.

    The server restarts a user's seqs only while the user has no live connection
    (protocol section 6), so a new era starts at a connection that opened after every
    earlier one closed and whose welcome last_seq is below a seq already seen.
    """
    out: list[list[ConnectionHistory]] = []
    seen_max = -1
    latest_close: float | None = 0.0  # None = some earlier connection never closed
    for c in conns:
        if out and c.welcome_last_seq is not None and c.opened_at is not None:
            all_closed = latest_close is not None and latest_close <= c.opened_at
            if all_closed and c.welcome_last_seq < seen_max:
                out.append([])
                seen_max = -1
        if not out:
            out.append([])
        out[-1].append(c)
        seen_max = max(seen_max, c.welcome_last_seq or 0, c.last_seq or 0)
        if c.closed_at is None or c.open_at_end:
            latest_close = None
        elif latest_close is not None:
            latest_close = max(latest_close, c.closed_at)
    return out


def end_of(c: ConnectionHistory, history: History) -> float | None:
    """When the connection stopped being observed: its close, else the end of the run."""
    if c.closed_at is not None and not c.open_at_end:
        return c.closed_at
    return history.ended_at if c.open_at_end else c.closed_at


def subtract(ranges: list[list[int]], gap: list | None) -> tuple[list[list[int]], int]:
    """Remove the announced gap [from, to|None] from ranges; return (rest, removed count)."""
    if not gap or gap[0] is None:
        return ranges, 0
    g_lo, g_hi = gap[0], gap[1] if gap[1] is not None else float("inf")
    rest: list[list[int]] = []
    removed = 0
    for a, b in ranges:
        lo, hi = max(a, g_lo), min(b, g_hi)
        if lo > hi:
            rest.append([a, b])
            continue
        removed += int(hi - lo + 1)
        if a < lo:
            rest.append([a, int(lo) - 1])
        if hi < b:
            rest.append([int(hi) + 1, b])
    return rest, removed


def count(ranges: list[list[int]]) -> int:
    return sum(b - a + 1 for a, b in ranges)


def clip(ranges: list[list[int]], limit: int = 20) -> list[list[int]]:
    """Evidence ranges, capped."""
    return ranges[:limit]
