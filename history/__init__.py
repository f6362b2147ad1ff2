"""The history: the one contract between the load side and the checks.

The recorder (client/recorder.py) writes a `History`; the checkers (checks/) read it; Locust
workers send it to the master as JSON. By job:

- history.ranges: the bounded value types (SeqSet, Arrivals with the run-extension rule,
  Samples) and their caps;
- history.records: the records of a run (History, ConnectionHistory, ChannelRecord,
  PublishRecord, AckedSeqs), their JSON form and merge; the format is described there;
- history.folded: the bounded summary of folded (closed, no longer kept) connections and
  its merge;
- history.messages: unstamped messages, their 64-bit identity (`message_key`,
  `content_key`) and the per-(connection, channel) `MessageLog` of them in arrival order.

It imports nothing of client/, checks/ or socketproof/: dependencies run history <- checkers
<- fold <- the run.
"""
from __future__ import annotations

from history.folded import Folded
from history.messages import LOG_BUDGET, LOG_CAP, MessageLog, content_key, key_text, message_key
from history.ranges import RANGE_CAP, RUN_BUDGET, RUN_CAP, SAMPLE_CAP, Arrivals, Samples, SeqSet
from history.records import (
    HISTORY_VERSION,
    KEY_CAP,
    MAX_SILENCE,
    OTHER,
    SEQ_ID_CAP,
    STEADY,
    AckedSeqs,
    ChannelRecord,
    ConnectionHistory,
    History,
    PublishRecord,
    state_digest,
)

__all__ = [
    "HISTORY_VERSION", "KEY_CAP", "LOG_BUDGET", "LOG_CAP", "OTHER", "RANGE_CAP", "RUN_BUDGET", "RUN_CAP",
    "SAMPLE_CAP", "SEQ_ID_CAP", "MAX_SILENCE", "STEADY",
    "AckedSeqs", "Arrivals", "ChannelRecord", "ConnectionHistory", "Folded", "History", "MessageLog",
    "PublishRecord", "Samples", "SeqSet", "content_key", "key_text", "message_key", "state_digest",
]
