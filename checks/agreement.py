"""Subscriber agreement: with nobody publishing, the subscribers of a channel get the same
messages in the same order.

A feed the backend publishes carries no stamp, so loss, ordering and duplicates cannot judge
it; its subscribers can be compared with one another instead. Judged per channel, over the
unstamped deliveries only (each known by its key, history.messages: the adapter's message id,
else a hash of the body), between the connections subscribed to it. A connection's window on
a channel is `subscribed_at` (its first receipt when it never subscribed) to its close, or the
end of the run when it was open then; a message's time is its first receipt, read in the
clock of the connection judged (the first receipt in its own process when one of that
process's connections got it: workers' clocks may differ), else anywhere. "Subscribed over m's
time" means inside the window by GRACE seconds at both ends, so a message in flight while a
connection subscribed or closed is owed to nobody.

- `missed`: C was subscribed over m's time and never got m, while of the other subscribers
  that were, more got m than did not (at least one got it). This contains the case "every
  other subscriber got it"; a majority is asked rather than all so that a fault hitting several
  subscribers at once (a proxy in front of some of them) is still caught, and a message that
  only a few got (one subscriber's own notice) is counted against nobody. One anomaly per
  connection and channel: its window, how many it missed, samples (id, when, how many of
  how many others got it).
- `duplicate`: one message twice or more on one connection and channel (kept for folded
  connections too).
- `order`: two connections got the same two messages in opposite orders. How the work is
  bounded: a reference order is built from every log's "b came right after a" (a topological
  order; where logs disagree, the side more logs took). A log that follows it agrees with
  every other such log on every pair of messages they share, so each inversion between two
  subscribers has at least one "deviant" (a log that does not follow it) on one side, and each
  deviant is compared with the other subscribers, those that follow the reference first: one
  walk of the other's log through the messages both have, and an inversion exists exactly
  when two neighbours of that walk descend. So no inversion goes unreported: every deviant
  that disagrees with anyone is an anomaly, with up to WITNESSES subscribers that got two
  messages the other way round (both labels, both ids, both orders, the times); what is not
  listed is the partners beyond WITNESSES (the search stops there: `compared_with_all` says
  whether it went through every subscriber), so a subscriber that follows the reference is
  named only as one of those witnesses. A clean channel costs one
  pass over its logs; a faulty one at most ORDER_WORK_CAP steps over the run, after which the
  deviants left are not compared and the verdict says so (UNKNOWN when nothing else failed).
  Not an anomaly here: a cycle no two subscribers show (A got a<b, B b<c, C c<a: no two of
  them share two messages the other way round).

Stamped deliveries are not judged here (the run had publishers: loss, ordering and duplicates
judge those exactly). UNKNOWN, with the reason: an incomplete history, no delivery, every
delivery stamped, unstamped deliveries with no identity, no channel with two subscribers, a
log that hit the recorder's cap (what came after it is not judged), or the order work cap.
Not judged: folded connections' missed and order (their logs are not kept; their duplicates
are), and unsubscribing (not recorded: a connection that left a channel before closing looks
subscribed to the end).
"""
from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

from checks._common import folded_anomaly, ref
from checks.registry import Check, register
from checks.verdict import Anomaly, Verdict, verdict
from history import LOG_BUDGET, LOG_CAP, ChannelRecord, ConnectionHistory, History, key_text

NAME = "agreement"
GRACE = 1.0
"""Seconds at each end of a connection's window in which a message is owed to it by nobody."""
ORDER_WORK_CAP = 4_000_000
"""Steps (one message looked up in another log) the order comparison may spend per run."""
SAMPLES = 10
"""Evidence samples per anomaly."""
WITNESSES = 5
"""Subscribers found to disagree with one whose order differs from the reference, before the
search for more stops (each is named in its evidence)."""
DIGITS = 4
"""Evidence times are rounded to 0.1 ms (a log keeps them as float32 offsets: 0.25 ms over an hour)."""


@dataclass(slots=True)
class _Sub:
    """One connection subscribed to the channel judged."""

    conn: ConnectionHistory
    start: float  # its window on the channel
    end: float
    lo: float  # the window shrunk by the grace: messages in [lo, hi] are owed to it
    hi: float
    order: list[int] = field(default_factory=list)  # keys, first arrival of each, in order
    times: list[float] = field(default_factory=list)


def _log_duplicates(channel: str, record: ChannelRecord) -> tuple[int, list[dict]]:
    log = record.log
    if log is None:
        return 0, []
    first: dict[int, float] = {}
    repeats: dict[int, list[float]] = {}
    for key, t in log.entries():
        if key in first:
            repeats.setdefault(key, []).append(t)
        else:
            first[key] = t
    total = sum(len(ts) for ts in repeats.values())
    samples = [{"channel": channel, "id": key_text(k), "count": len(ts) + 1,
                "at": [round(t, DIGITS) for t in (first[k], *ts[:3])]}
               for k, ts in list(repeats.items())[:SAMPLES]]
    return total, samples


def connection_anomalies(c: ConnectionHistory) -> list[Anomaly]:
    """The duplicates one connection proves on its own (kept for folded ones too)."""
    out = []
    for channel, record in c.received.items():
        total, samples = _log_duplicates(channel, record)
        if total:
            out.append(Anomaly("duplicate", f"{c.label} ({c.user}) got {total} unstamped message(s) on "
                                            f"{channel} a second time",
                               {**ref(c), "channel": channel, "count": total, "samples": samples}))
    return out


def _window(c: ConnectionHistory, record: ChannelRecord, history: History) -> tuple[float, float] | None:
    log = record.log
    start = record.subscribed_at if record.subscribed_at is not None else (log.t0 if log else None)
    if start is None:
        return None
    last = log.last_at if log is not None else None
    if c.open_at_end:
        end = history.ended_at if history.ended_at is not None else c.closed_at
    else:
        end = c.closed_at
    if end is None:  # still running in an incomplete history: owed only what it was seen to get
        end = last if last is not None else start
    if log is not None and log.truncated and last is not None:
        end = min(end, last)  # what came after the cap is not in the log: owed nothing there
    return start, end


class _Channel:
    """One channel's subscribers and messages."""

    def __init__(self, name: str, subs: list[_Sub]) -> None:
        self.name = name
        self.subs = subs
        self.first: dict[int, float] = {}  # key -> first receipt anywhere
        self.by_process: dict[str, dict[int, float]] = defaultdict(dict)  # first receipt per process
        for s in subs:
            mine = self.by_process[s.conn.process]
            for key, t in zip(s.order, s.times, strict=True):
                if t < self.first.get(key, t + 1.0):
                    self.first[key] = t
                if t < mine.get(key, t + 1.0):
                    mine[key] = t

    def time_for(self, process: str, key: int) -> float:
        """m's time in the clock of `process`."""
        t = self.by_process[process].get(key)
        return self.first[key] if t is None else t

    # -- missed ---------------------------------------------------------------
    def missed(self) -> tuple[list[Anomaly], int]:
        """Per message: how many subscribers were owed it and how many of those got it; then,
        for the messages someone owed did not get, who."""
        owed_by_process: dict[str, tuple[list[float], list[float]]] = {}
        for process in self.by_process:
            windows = [(s.lo, s.hi) for s in self.subs if s.conn.process == process and s.lo <= s.hi]
            owed_by_process[process] = (sorted(w[0] for w in windows), sorted(w[1] for w in windows))
        got: dict[int, int] = defaultdict(int)  # subscribers owed m that got it
        for s in self.subs:
            times = self.by_process[s.conn.process]
            for key in s.order:
                t = times[key]
                if s.lo <= t <= s.hi:
                    got[key] += 1
        suspects: dict[int, tuple[int, int]] = {}  # key -> (owed, got) where some owed missed it
        for key in self.first:
            owed = 0
            for process, (los, his) in owed_by_process.items():
                t = self.time_for(process, key)
                owed += bisect_right(los, t) - bisect_left(his, t)
            if owed > got[key]:
                suspects[key] = (owed, got[key])
        anomalies: list[Anomaly] = []
        total = 0
        if not suspects:
            return anomalies, total
        for s in self.subs:
            if s.lo > s.hi:
                continue
            have = set(s.order)
            missing = []
            for key, (owed, n_got) in suspects.items():
                if key in have:
                    continue
                t = self.time_for(s.conn.process, key)
                if not s.lo <= t <= s.hi:
                    continue
                missed_by_others = owed - n_got - 1
                if n_got >= 1 and n_got > missed_by_others:
                    missing.append((t, key, n_got, owed - 1))
            if missing:
                missing.sort()
                total += len(missing)
                anomalies.append(self._missed_anomaly(s, missing))
        return anomalies, total

    def _missed_anomaly(self, s: _Sub, missing: list[tuple[float, int, int, int]]) -> Anomaly:
        c = s.conn
        t, key, n_got, others = missing[0]
        where = "open at the end of the run" if c.open_at_end else "closed before the end"
        return Anomaly(
            "missed",
            f"{c.label} ({self.name}, {where}) missed {len(missing)} message(s) other subscribers got while "
            f"it was subscribed, e.g. {key_text(key)} at {t:.3f} ({n_got} of {others} others got it)",
            {**ref(c), "channel": self.name, "subscribed_from": round(s.start, DIGITS),
             "subscribed_until": round(s.end, DIGITS), "open_at_end": c.open_at_end,
             "missed_count": len(missing),
             "samples": [{"id": key_text(k), "at": round(at, DIGITS), "got": g, "of": o}
                         for at, k, g, o in missing[:SAMPLES]]})

    # -- order ----------------------------------------------------------------
    def reference(self) -> dict[int, int]:
        """Key -> rank in the reference order: a topological order of "b came right after a"
        over every log, each edge weighted by the logs that show it. Next is always the message
        with the least weight still pointing at it (0 while the logs agree: Kahn's order), then
        the earliest; in a cycle that is the side fewer logs took."""
        first = self.first
        succ: dict[int, dict[int, int]] = {}
        weight_in: dict[int, int] = dict.fromkeys(first, 0)
        for s in self.subs:
            order = s.order
            for a, b in zip(order, order[1:], strict=False):
                nxt = succ.get(a)
                if nxt is None:
                    nxt = succ[a] = {}
                nxt[b] = nxt.get(b, 0) + 1
                weight_in[b] += 1
        heap = [(w, first[k], k) for k, w in weight_in.items()]
        heapq.heapify(heap)
        rank: dict[int, int] = {}
        while heap:
            w, _, key = heapq.heappop(heap)
            if key in rank or w != weight_in[key]:
                continue  # placed already, or a stale entry (its weight went down since)
            rank[key] = len(rank)
            for n, wt in succ.get(key, {}).items():
                if n not in rank:
                    weight_in[n] -= wt
                    heapq.heappush(heap, (weight_in[n], first[n], n))
        return rank

    def order(self, budget: list[int]) -> tuple[list[Anomaly], int, int, bool]:
        """(anomalies, deviants, pairs compared, capped). Each deviant is compared with the
        others (those that follow the reference first: they are the likeliest to disagree and
        cost one walk each) until WITNESSES of them disagree with it or none is left."""
        subs = [s for s in self.subs if len(s.order) > 1]
        if len(subs) < 2:
            return [], 0, 0, False
        rank = self.reference()
        deviant = [any(rank[a] > rank[b] for a, b in zip(s.order, s.order[1:], strict=False)) for s in subs]
        others = sorted(range(len(subs)), key=lambda j: deviant[j])
        anomalies: list[Anomaly] = []
        compared = 0
        for i, x in enumerate(subs):
            if not deviant[i]:
                continue
            pos = {k: j for j, k in enumerate(x.order)}
            witnesses: list[dict] = []
            every_other = True
            for j in others:
                if j == i:
                    continue
                if len(witnesses) >= WITNESSES:
                    every_other = False
                    break
                if budget[0] <= 0:
                    if witnesses:
                        anomalies.append(self._order_anomaly(x, witnesses, False))
                    return anomalies, sum(deviant), compared, True
                y = subs[j]
                budget[0] -= len(y.order)
                compared += 1
                found = _inversion(pos, y.order)
                if found is not None:
                    a, b, ya, yb = found  # y got a (at index ya) before b; x got b before a
                    witnesses.append({"other": y.conn.label, "other_process": y.conn.process,
                                      "this_got": [key_text(b), key_text(a)],
                                      "this_at": [round(x.times[pos[b]], DIGITS), round(x.times[pos[a]], DIGITS)],
                                      "other_got": [key_text(a), key_text(b)],
                                      "other_at": [round(y.times[ya], DIGITS), round(y.times[yb], DIGITS)]})
            if witnesses:
                anomalies.append(self._order_anomaly(x, witnesses, every_other))
        return anomalies, sum(deviant), compared, False

    def _order_anomaly(self, x: _Sub, witnesses: list[dict], every_other: bool) -> Anomaly:
        w = witnesses[0]
        n = len(witnesses) if every_other else f"at least {len(witnesses)}"
        return Anomaly(
            "order",
            f"{x.conn.label} ({self.name}) got messages in the opposite order to {n} other subscriber(s): "
            f"{w['this_got'][0]} before {w['this_got'][1]}, which {w['other']} got the other way round",
            {**ref(x.conn), "channel": self.name, "disagrees_with": len(witnesses),
             "compared_with_all": every_other, "samples": witnesses})


def _inversion(pos_x: dict[int, int], y_order: list[int]) -> tuple[int, int, int, int] | None:
    """Walk y's order through the messages x also has: the first two neighbours x has the
    other way round, as (a, b, y's index of a, y's index of b); None when they agree."""
    prev = prev_at = -1
    prev_key = 0
    for j, key in enumerate(y_order):
        p = pos_x.get(key)
        if p is None:
            continue
        if p < prev:
            return prev_key, key, prev_at, j
        prev, prev_key, prev_at = p, key, j
    return None


def check_agreement(history: History, grace: float = GRACE) -> Verdict:
    anomalies: list[Anomaly] = []
    deliveries = unstamped = logged = 0
    by_channel: dict[str, list[_Sub]] = defaultdict(list)
    truncated: set[str] = set()
    for c in history.connections:
        deliveries += c.deliveries
        anomalies += connection_anomalies(c)
        for channel, record in c.received.items():
            unstamped += record.unstamped
            log = record.log
            if log is not None:
                logged += len(log) + log.truncated
            window = _window(c, record, history)
            if window is None:
                continue
            start, end = window
            sub = _Sub(c, start, end, start + grace, end - grace)
            if log is not None:
                seen: set[int] = set()
                for key, t in log.entries():
                    if key not in seen:
                        seen.add(key)
                        sub.order.append(key)
                        sub.times.append(t)
                if log.truncated:
                    truncated.add(channel)
            by_channel[channel].append(sub)
    found = history.folded.findings.get("duplicate")
    if found:
        anomalies.append(folded_anomaly("duplicate", found, "got an unstamped message a second time"))

    judged: list[str] = []
    single: list[str] = []
    missed_total = messages = subscribers = deviants = compared = 0
    capped = False
    budget = [ORDER_WORK_CAP]
    order_anomalies: list[Anomaly] = []
    for name, subs in sorted(by_channel.items()):
        if not any(s.order for s in subs):
            continue  # no unstamped message on this channel: nothing of ours to judge
        if len(subs) < 2:
            single.append(name)
            continue
        judged.append(name)
        channel = _Channel(name, subs)
        messages += len(channel.first)
        subscribers += len(subs)
        missed, n = channel.missed()
        anomalies += missed
        missed_total += n
        if not capped:
            found_order, d, k, capped = channel.order(budget)
            order_anomalies += found_order
            deviants += d
            compared += k
    anomalies += order_anomalies
    truncated &= set(judged)  # a channel not judged anyway says so by itself
    duplicates = sum(a.evidence["count"] for a in anomalies if a.kind == "duplicate")
    stats = {"channels_judged": len(judged), "subscribers": subscribers, "messages": messages,
             "deliveries": deliveries, "unstamped_deliveries": unstamped, "logged": logged,
             "unidentified": max(0, unstamped - logged), "missed": missed_total, "duplicates": duplicates,
             "order_deviants": deviants, "order_pairs_compared": compared,
             "order_work": ORDER_WORK_CAP - budget[0], "order_capped": capped,
             "single_subscriber_channels": len(single),
             "truncated_channels": sorted(truncated)[:10], "grace": grace,
             "folded_connections": history.folded.connections}
    if single:
        stats["single_subscriber_examples"] = single[:5]
    reason = _reason(history, deliveries, unstamped, logged, judged, single, truncated, capped)
    return verdict(NAME, anomalies, stats, known=not reason, reason=reason)


def _reason(history: History, deliveries: int, unstamped: int, logged: int, judged: list[str],
            single: list[str], truncated: set[str], capped: bool) -> str:
    """Why agreement cannot be decided: said in the verdict table, so an unknown is never silent."""
    if not history.complete:
        return "the run was cut short (history incomplete)"
    if not deliveries and not history.folded.deliveries:
        return "no message was delivered"
    if not unstamped:
        return "every message carried a stamp: loss/ordering/duplicates judge this run"
    if not logged:
        return f"{unstamped} unstamped deliveries carried no message id and no body to know them by"
    if not judged:
        return (f"only one subscriber per channel ({len(single)} channel(s) with unstamped messages): "
                f"nothing to compare")
    if truncated:
        names = ", ".join(sorted(truncated)[:3])
        return (f"{len(truncated)} channel(s) had a connection's log over the recorder's cap ({LOG_CAP} messages "
                f"per channel, {LOG_BUDGET} per connection): what came after it is not judged ({names})")
    if capped:
        return (f"the order comparison reached its cap of {ORDER_WORK_CAP} steps: some subscribers were not "
                f"compared")
    return ""


def applies(history: History) -> bool:
    """Agreement judges what nobody in the run stamped: runs with unstamped deliveries, or runs
    where nobody published (a feed only listened to, where it says why it cannot decide). A run
    whose every message is stamped is judged by loss, ordering and duplicates, exactly."""
    if not history.published and not history.published_overflow:
        return True
    return any(record.unstamped for c in history.connections for record in c.received.values())


register(Check(name=NAME, check=check_agreement, order=35,
               help="with no publisher: a channel's subscribers get the same messages in the same order",
               connection_anomalies=connection_anomalies, applies=applies))
