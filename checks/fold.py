"""Folding: a closed connection squeezed into `History.folded`, keeping its evidence.

The recorder keeps the latest closed connections whole and folds older ones here, so a
run with a million reconnects holds bounded memory. What a folded connection leaves:
- the anomalies it proves on its own, found by the checks' own per-connection code
  (ordering, duplicates, seq holes of a closed connection, state versions), as evidence
  samples per kind with the true count;
- its stamp holes (counters missing between the first and last it got from a sender),
  merged per (sender, channel): the loss check judges them against what was owed, which
  only the whole run knows; a few receivers are named as evidence;
- per channel its highest seq and open/close span (server-restart eras, loss coverage);
- heartbeat facts: those of the FOLD_HEARTBEAT most irregular connections, and a sample
  of mean ping intervals (for the observed interval).
Given up: seq -> id maps (tab divergence) and the detail of clean connections.
All of it is bounded: FOLD_KEYS (sender, channel) hole sets of at most RANGE_CAP ranges,
FOLD_KEYS channels, SAMPLE_CAP samples per kind, FOLD_HEARTBEAT facts, FOLD_MEANS means;
what does not fit is counted in `Folded.overflow`.
"""
from __future__ import annotations

from checks import duplicates, heartbeat, loss, ordering, state
from checks._common import clip, ref
from checks.history import RANGE_CAP, ConnectionHistory, Folded, Samples, SeqSet

FOLD_KEYS = 4096
FOLD_HEARTBEAT = 20
FOLD_MEANS = 256
FOLD_PROCESSES = 256


def fold(into: Folded, c: ConnectionHistory) -> None:
    """Add one closed connection to the summary (in place)."""
    into.connections += 1
    if c.process in into.by_process or len(into.by_process) < FOLD_PROCESSES:
        into.by_process[c.process] = into.by_process.get(c.process, 0) + 1
    into.deliveries += c.deliveries
    found = (ordering.connection_anomalies(c) + duplicates.connection_anomalies(c)
             + loss.seq_holes(c) + state.connection_anomalies(c))
    for anomaly in found:
        into.findings.setdefault(anomaly.kind, Samples()).add({"message": anomaly.message, **anomaly.evidence})
    for channel, record in c.received.items():
        for sender, arrivals in record.senders.items():
            if arrivals.truncated:
                into.overflow += 1
                continue
            got = arrivals.received()
            holes = got.missing(got.first, got.last)
            if not holes:
                continue
            _add_holes(into, sender, channel, SeqSet(holes, RANGE_CAP))
            into.hole_receivers.add({**ref(c), "channel": channel, "sender": sender, "missing": clip(holes, 5)})
        if record.seqs is not None:
            _add_channel(into, channel, {"top": record.seqs.received().last, "opened_at": c.opened_at,
                                         "closed_at": c.closed_at})
    facts = heartbeat.facts(c, c.closed_at)
    facts["score"] = heartbeat.irregularity(facts)
    _add_heartbeat(into, [facts])
    if not c.heartbeat_interval and c.ping_interval_mean and len(into.ping_means) < FOLD_MEANS:
        into.ping_means.append(c.ping_interval_mean)


def _add_holes(into: Folded, sender: str, channel: str, holes: SeqSet) -> None:
    mine = into.holes.get(sender, {}).get(channel)
    if mine is None:
        if sum(len(chs) for chs in into.holes.values()) >= FOLD_KEYS:
            into.overflow += 1
            return
        into.holes.setdefault(sender, {})[channel] = holes
    else:
        into.holes[sender][channel] = mine.union(holes)


def _add_channel(into: Folded, channel: str, entry: dict) -> None:
    mine = into.channel_seqs.get(channel)
    if mine is None:
        if len(into.channel_seqs) >= FOLD_KEYS:
            into.overflow += 1
            return
        into.channel_seqs[channel] = dict(entry)
        return
    for key, pick in (("top", max), ("opened_at", min), ("closed_at", max)):
        values = [v for v in (mine.get(key), entry.get(key)) if v is not None]
        mine[key] = pick(values) if values else None


def _add_heartbeat(into: Folded, facts: list[dict]) -> None:
    """Keep the most irregular facts (dropping the most regular ones is the design, not overflow)."""
    kept = sorted(into.heartbeat + facts, key=lambda f: -f.get("score", 0.0))
    into.heartbeat = kept[:FOLD_HEARTBEAT]


def merge_folded(a: Folded, b: Folded) -> Folded:
    """Union of two summaries (workers -> master); the caps apply again."""
    out = a.copy()
    other = b.copy()
    out.connections += other.connections
    for process, n in other.by_process.items():
        if process in out.by_process or len(out.by_process) < FOLD_PROCESSES:
            out.by_process[process] = out.by_process.get(process, 0) + n
    out.deliveries += other.deliveries
    for kind, samples in other.findings.items():
        out.findings[kind] = out.findings[kind].merge(samples) if kind in out.findings else samples
    for sender, channels in other.holes.items():
        for channel, holes in channels.items():
            _add_holes(out, sender, channel, holes)
    out.hole_receivers = out.hole_receivers.merge(other.hole_receivers)
    for channel, entry in other.channel_seqs.items():
        _add_channel(out, channel, entry)
    _add_heartbeat(out, other.heartbeat)
    out.ping_means = (out.ping_means + other.ping_means)[:FOLD_MEANS]
    out.overflow += other.overflow
    return out
