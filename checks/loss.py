"""Loss: a message the server took is delivered to every connection that should get it.

From stamps (every adapter), per receiving connection, channel and sender: the counters
the sender was owed to deliver are the acknowledged ones (PUBLISH_ACK), else the ones
published without a refusal. Lost are
- owed counters between the first and the last counter the receiver got from the sender
  (it was subscribed all along: it got both ends);
- for a receiver open at the end of the run, owed counters after the last one it got,
  and all of them when it got none but subscribed before the sender's first publish to
  the channel (a connection's own publishes are judged by holes only: a server may skip
  the sender);
- owed counters in the holes of folded connections (`fold_holes` keeps them).

From server seqs (SERVER_SEQ with resume offsets, RESUME), per connection and implicit
channel, as protocol section 6 defines it:
- a connection open at the end must hold every seq in [expect_from, max(highest acked
  seq of the channel, its own last seq)], except the gap its start-up announced;
- a connection closed before the end must have no hole between expect_from and its last.
Acked seqs above every connection's coverage while the channel had no connection open
at the end are still queued server-side: stats `undelivered_at_end`, not a loss.

UNKNOWN when the history is incomplete (holes in closed connections are still proof),
when nothing could be checked, when acks name a channel no connection received, when the
server forgot a channel mid-run (its seqs restarted: acks cannot be placed), or when
caps truncated what is needed (streams at RUN_CAP, refusals or publish records overflowed).
"""
from __future__ import annotations

from collections import defaultdict

from checks._common import clip, count, eras, ref, seq_views, subtract
from checks.registry import Check, register
from checks.verdict import Anomaly, Verdict, verdict
from history import RANGE_CAP, ConnectionHistory, Folded, History, PublishRecord, SeqSet

NAME = "loss"


def owed(history: History, record: PublishRecord) -> SeqSet | None:
    """The counters a sender's publishes to one channel owe each receiver (None: unknown)."""
    if history.has("publish_ack"):
        return record.acked
    if record.failed.overflow:
        return None
    out = SeqSet()
    for a, b in record.counters.ranges():
        for lo, hi in record.failed.missing(a, b):
            out.add_range(lo, hi)
    return out


def seq_holes(c: ConnectionHistory) -> list[Anomaly]:
    """Seq holes a connection closed before the end proves on its own (kept for folded ones too)."""
    if c.expect_from is None or c.open_at_end or c.closed_at is None:
        return []
    out = []
    for channel in c.channels:
        record = c.received.get(channel)
        if record is None or record.seqs is None or record.seqs.truncated:
            continue
        got = record.seqs.received()
        if got.last is None:
            continue
        holes, _ = subtract(got.missing(c.expect_from, got.last), c.gap)
        if holes:
            out.append(_seq_anomaly(c, channel, holes, got.last, None, "closed before the end"))
    return out


def fold_holes(into: Folded, c: ConnectionHistory) -> None:
    """Keep a folded connection's stamp holes (counters missing between the first and last it
    got from a sender), merged per (sender, channel): only the whole run knows what was owed."""
    for channel, record in c.received.items():
        for sender, arrivals in record.senders.items():
            if arrivals.truncated:
                into.overflow += 1
                continue
            got = arrivals.received()
            holes = got.missing(got.first, got.last)
            if not holes:
                continue
            into.add_holes(sender, channel, SeqSet(holes, RANGE_CAP))
            into.hole_receivers.add({**ref(c), "channel": channel, "sender": sender, "missing": clip(holes, 5)})


def _seq_anomaly(c: ConnectionHistory, channel: str, holes: list, hi: int, max_acked: int | None,
                 where: str) -> Anomaly:
    n = count(holes)
    return Anomaly("lost", f"{c.label} ({channel}, {where}) is missing {n} seq(s) in [{c.expect_from}, {hi}]",
                   {**ref(c), "channel": channel, "missing": clip(holes), "missing_count": n,
                    "expect_from": c.expect_from, "up_to": hi, "max_acked": max_acked, "gap": c.gap,
                    "opened_at": c.opened_at, "closed_at": c.closed_at, "open_at_end": c.open_at_end})


class _Loss:
    """One pass of the loss check (state shared by the stamp and seq parts)."""

    def __init__(self, history: History) -> None:
        self.h = history
        self.anomalies: list[Anomaly] = []
        self.stats = {"stamp_pairs_checked": 0, "seq_connections_checked": 0, "lost_stamps": 0,
                      "lost_seqs": 0, "announced": 0, "undelivered_at_end": 0, "acked_seqs": 0,
                      "truncated_streams": 0, "unknown_senders": 0, "unjudged_publishers": 0}
        self.reset_channels: list[str] = []
        self.no_history: list[str] = []
        self._owed: dict[tuple[str, str], SeqSet | None] = {}

    def owed(self, sender: str, channel: str, record: PublishRecord) -> SeqSet | None:
        key = (sender, channel)
        if key not in self._owed:
            self._owed[key] = owed(self.h, record)
            if self._owed[key] is None:
                self.stats["unjudged_publishers"] += 1
        return self._owed[key]

    def lost(self, c: ConnectionHistory, channel: str, sender: str, missing: list, extra: dict) -> None:
        n = count(missing)
        self.stats["lost_stamps"] += n
        where = "open at the end of the run" if c.open_at_end else "closed before the end"
        self.anomalies.append(Anomaly(
            "lost", f"{c.label} ({channel}, {where}) never got {n} message(s) {sender} published",
            {**ref(c), "channel": channel, "sender": sender, "missing": clip(missing), "missing_count": n,
             "opened_at": c.opened_at, "closed_at": c.closed_at, "open_at_end": c.open_at_end, **extra}))

    # -- stamps -------------------------------------------------------------
    def stamps(self) -> None:
        h = self.h
        by_channel: dict[str, list[tuple[str, PublishRecord]]] = defaultdict(list)
        for sender, channels in h.published.items():
            for channel, record in channels.items():
                by_channel[channel].append((sender, record))
        for c in h.connections:
            for channel, record in c.received.items():
                tail_ok = c.open_at_end and channel not in self.reset_channels
                for sender, arrivals in record.senders.items():
                    pub = h.published.get(sender, {}).get(channel)
                    if pub is None:
                        self.stats["unknown_senders"] += 1
                        continue
                    if arrivals.truncated:
                        self.stats["truncated_streams"] += 1
                        continue
                    due = self.owed(sender, channel, pub)
                    if due is None:
                        continue
                    self.stats["stamp_pairs_checked"] += 1
                    got = arrivals.received()
                    missing = due.intersect(got.missing(got.first, got.last))
                    if tail_ok and sender != c.label and due.last is not None and due.last > got.last:
                        missing += due.intersect([[got.last + 1, due.last]])
                    if missing:
                        self.lost(c, channel, sender, missing, {
                            "first": got.first, "last": got.last, "subscribed_at": record.subscribed_at,
                            "last_arrival_at": arrivals.last_at, "published_first_at": pub.first_at,
                            "published_last_at": pub.last_at})
                if not tail_ok or record.subscribed_at is None or c.untracked:
                    continue
                for sender, pub in by_channel.get(channel, ()):
                    if sender in record.senders or sender == c.label or pub.first_at is None:
                        continue
                    if record.subscribed_at > pub.first_at:
                        continue  # subscribed after the sender began: which ones it was owed is not known
                    due = self.owed(sender, channel, pub)
                    if due is None:
                        continue
                    self.stats["stamp_pairs_checked"] += 1
                    if due:
                        self.lost(c, channel, sender, due.ranges(), {
                            "first": None, "last": None, "subscribed_at": record.subscribed_at,
                            "published_first_at": pub.first_at, "published_last_at": pub.last_at})
        for sender, channels in h.folded.holes.items():
            for channel, holes in channels.items():
                pub = h.published.get(sender, {}).get(channel)
                due = self.owed(sender, channel, pub) if pub is not None else None
                missing = due.intersect(holes.ranges()) if due is not None else []
                if missing:
                    n = count(missing)
                    self.stats["lost_stamps"] += n
                    receivers = [r for r in h.folded.hole_receivers.items
                                 if r.get("sender") == sender and r.get("channel") == channel][:5]
                    self.anomalies.append(Anomaly(
                        "lost", f"folded connection(s) on {channel} never got {n} message(s) {sender} published",
                        {"folded": True, "channel": channel, "sender": sender, "missing": clip(missing),
                         "missing_count": n, "receivers": receivers}))

    # -- server seqs ----------------------------------------------------------
    def seqs(self) -> None:
        h = self.h
        views = seq_views(h)
        for channel, acked in h.acked_seqs.items():
            self.stats["acked_seqs"] += acked.count
            if channel not in views:
                self.no_history.append(channel)
        for channel, chan_views in views.items():
            acked = h.acked_seqs.get(channel)
            max_acked = acked.top if acked else None
            if len(eras(chan_views)) > 1:
                self.reset_channels.append(channel)
                max_acked = None  # acks cannot be placed in an era: holes only
            any_open = False
            coverage = 0
            for v in chan_views:
                coverage = max(coverage, v.last_seq or 0)
                c = v.conn
                if c is None or c.expect_from is None or channel not in c.channels:
                    continue
                coverage = max(coverage, c.expect_from - 1)
                if v.record is not None and v.record.seqs is not None and v.record.seqs.truncated:
                    self.stats["truncated_streams"] += 1
                    continue
                got = v.record.seqs.received() if v.record is not None and v.record.seqs is not None else SeqSet()
                if c.open_at_end:
                    any_open = True
                    hi = max(max_acked or 0, got.last or 0)
                    where = "open at the end of the run"
                elif c.closed_at is not None:
                    hi = got.last or 0
                    where = "closed before the end"
                else:
                    continue  # still running in an incomplete history: no proof either way
                self.stats["seq_connections_checked"] += 1
                holes, gone = subtract(got.missing(c.expect_from, hi), c.gap)
                self.stats["announced"] += gone
                if holes:
                    self.stats["lost_seqs"] += count(holes)
                    self.anomalies.append(_seq_anomaly(c, channel, holes, hi, max_acked, where))
            if not any_open and max_acked is not None and max_acked > coverage:
                self.stats["undelivered_at_end"] += (
                    max_acked - coverage - count(acked.seqs.missing(coverage + 1, max_acked)))
        for kind in ("lost",):
            found = h.folded.findings.get(kind)
            if found:
                self.stats["lost_seqs"] += sum(int(s.get("missing_count", 0)) for s in found.items)
                self.anomalies.append(Anomaly(kind, f"{found.total} folded connection(s) closed with seq holes",
                                              {"folded": True, "count": found.total, "samples": found.items}))


def lost_messages(history: History) -> list[Anomaly]:
    """Every loss anomaly (the verdict keeps only the first MAX_ANOMALIES)."""
    run = _Loss(history)
    run.seqs()
    run.stamps()
    return run.anomalies


def check_loss(history: History) -> Verdict:
    run = _Loss(history)
    run.seqs()
    run.stamps()
    stats = run.stats
    # One message missing from both views (its stamp and its seq) is one loss, not two: the
    # larger view is the count; both stay in the stats.
    stats["lost"] = max(stats["lost_stamps"], stats["lost_seqs"])
    stats["seq_reset_channels"] = sorted(run.reset_channels)
    stats["channels_without_connections"] = sorted(run.no_history)
    stats["folded_connections"] = history.folded.connections
    checked = stats["stamp_pairs_checked"] + stats["seq_connections_checked"] + history.folded.deliveries
    reason = _unknown_reason(history, run, checked)
    return verdict(NAME, run.anomalies, stats, known=not reason, reason=reason)


def _unknown_reason(history: History, run: _Loss, checked: int) -> str:
    """Why loss cannot be decided: said in the verdict table, so an unknown is never silent."""
    stats = run.stats
    if run.reset_channels:
        return (f"the server forgot {len(run.reset_channels)} channel(s) mid-run (seqs restarted, e.g. a "
                f"restart): messages acked before it cannot be accounted for ({', '.join(run.reset_channels[:3])})")
    if run.no_history:
        return (f"acks for {len(run.no_history)} channel(s) with no recorded connection "
                f"({', '.join(run.no_history[:3])})")
    if not history.complete:
        return "the run was cut short (history incomplete)"
    if stats["truncated_streams"]:
        return f"{stats['truncated_streams']} stream(s) hit the recorder's cap of arrival runs"
    if stats["unjudged_publishers"]:
        return f"{stats['unjudged_publishers']} sender(s) had more refused publishes than the recorder keeps"
    if history.folded.overflow:
        return f"{history.folded.overflow} entries of folded connections did not fit the recorder's summary"
    if history.published_overflow and stats["unknown_senders"]:
        return (f"{history.published_overflow} publish(es) were not recorded (the recorder's table of "
                f"senders was full)")
    if not checked:
        return "no stamped delivery or published message to check"
    return ""


register(Check(name=NAME, check=check_loss, order=30,
               help="every message the server took reaches every connection owed it",
               connection_anomalies=seq_holes, fold=fold_holes))
