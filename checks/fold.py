"""Folding: a closed connection squeezed into `History.folded`, keeping its evidence.

The run hands `fold` to the recorder (socketproof.run.state), which keeps the latest
closed connections whole and folds older ones, so a run with a million reconnects holds
bounded memory. What a folded connection leaves (history.folded.Folded, with its caps):
- its count, process and deliveries;
- per registered check (checks.registry), the anomalies it proves on its own
  (`connection_anomalies`: order, duplicates, seq holes of a closed connection, state
  versions) as evidence samples per kind with the true count, and whatever else the
  check keeps (`fold`: the loss check its stamp holes, the heartbeat check its facts);
- per channel its highest seq and open/close span (server-restart eras, which the
  ordering and loss checks read through checks._common.seq_views).
Given up: seq -> id maps (tab divergence) and the detail of clean connections.
"""
from __future__ import annotations

from checks.registry import CHECKS
from history import ConnectionHistory, Folded


def fold(into: Folded, c: ConnectionHistory) -> None:
    """Add one closed connection to the summary (in place)."""
    into.add_connection(c.process, c.deliveries)
    for check in CHECKS.values():
        if check.connection_anomalies is not None:
            for anomaly in check.connection_anomalies(c):
                into.add_finding(anomaly.kind, {"message": anomaly.message, **anomaly.evidence})
        if check.fold is not None:
            check.fold(into, c)
    for channel, record in c.received.items():
        if record.seqs is not None:
            into.add_channel_seqs(channel, {"top": record.seqs.received().last, "opened_at": c.opened_at,
                                            "closed_at": c.closed_at})
