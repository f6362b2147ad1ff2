"""Helpers shared by the checkers (evidence, capabilities, seq views, eras, ranges)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from checks.verdict import Anomaly
from history import ChannelRecord, ConnectionHistory, History, Samples


def ref(c: ConnectionHistory) -> dict:
    """The evidence fields that name a connection."""
    return {"user": c.user, "label": c.label, "conn_id": c.conn_id, "process": c.process}


def lacks(history: History, capability: str, what: str) -> str | None:
    """The UNKNOWN reason when the history's adapter lacks `capability` ("has no <what>")."""
    if history.capabilities is None:
        return f"the history does not say whether its adapter has {what}"
    if capability not in history.capabilities:
        return f"the {history.adapter_name} adapter has no {what}"
    return None


def folded_anomaly(kind: str, found: Samples, what: str) -> Anomaly:
    """One anomaly for the folded connections' evidence of `kind` (see checks.fold)."""
    return Anomaly(kind, f"{found.total} folded connection(s) {what}",
                   {"folded": True, "count": found.total, "samples": found.items})


def by_user(history: History) -> dict[str, list[ConnectionHistory]]:
    """Connections grouped by user, each group ordered by opening time."""
    groups: dict[str, list[ConnectionHistory]] = defaultdict(list)
    for c in history.connections:
        groups[c.user].append(c)
    for conns in groups.values():
        conns.sort(key=lambda c: (c.opened_at is None, c.opened_at or 0.0, c.label))
    return dict(groups)


@dataclass(slots=True)
class SeqView:
    """One connection's server seqs on one channel, as the era and loss logic needs them.
    `conn`/`record` are None for the folded connections' summary of the channel."""

    opened_at: float | None
    closed_at: float | None
    open_at_end: bool
    server_last: int | None
    last_seq: int | None
    conn: ConnectionHistory | None = None
    record: ChannelRecord | None = None


def seq_views(history: History) -> dict[str, list[SeqView]]:
    """Per channel, the connections that got server seqs on it (plus the folded ones'
    summary), ordered by opening time. The resume offset (`server_last`) belongs to a
    connection's implicit channels only."""
    out: dict[str, list[SeqView]] = defaultdict(list)
    for c in history.connections:
        for channel, record in c.received.items():
            if record.seqs is None and channel not in c.channels:
                continue
            last = record.seqs.received().last if record.seqs is not None else None
            server_last = c.welcome_last_seq if channel in c.channels else None
            out[channel].append(SeqView(c.opened_at, c.closed_at, c.open_at_end, server_last, last,
                                        c, record))
    for channel, s in history.folded.channel_seqs.items():
        out[channel].append(SeqView(s.get("opened_at"), s.get("closed_at"), False, None, s.get("top")))
    for views in out.values():
        views.sort(key=lambda v: (v.opened_at is None, v.opened_at or 0.0, v.conn is not None))
    return dict(out)


def eras(views: list[SeqView]) -> list[list[SeqView]]:
    """Split one channel's views (ordered by opened_at) where the server forgot the channel.

    The reference server restarts a user's seqs only while the user has no live
    connection (protocol section 6), so a new era starts at a connection that opened
    after every earlier one closed and either whose server offset is below a seq already
    seen, or that got another message under a seq than the era's connections did (the
    seqs restarted and, by the time the user came back, ran past the old ones).
    """
    out: list[list[SeqView]] = []
    seen_max = -1
    seen_ids: dict[int, Any] = {}  # seq -> message id in this era (thinned like seq_ids)
    latest_close: float | None = 0.0  # None = some earlier connection never closed
    for v in views:
        ids = v.record.seq_ids if v.record is not None else {}
        if out and v.opened_at is not None and latest_close is not None and latest_close <= v.opened_at:
            below = v.server_last is not None and v.server_last < seen_max
            if below or any(seen_ids.get(seq, mid) != mid for seq, mid in ids.items()):
                out.append([])
                seen_max = -1
                seen_ids = {}
        if not out:
            out.append([])
        out[-1].append(v)
        seen_max = max(seen_max, v.server_last or 0, v.last_seq or 0)
        for seq, mid in ids.items():
            seen_ids.setdefault(seq, mid)
        if v.closed_at is None or v.open_at_end:
            latest_close = None
        elif latest_close is not None:
            latest_close = max(latest_close, v.closed_at)
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

