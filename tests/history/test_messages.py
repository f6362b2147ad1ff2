"""Unstamped messages in the history: their 64-bit keys, the per-(connection, channel) log,
its cap, and its place on the wire (base64 arrays, absent when there is no log)."""
import json
import subprocess
import sys

import history.messages
from history import ChannelRecord, ConnectionHistory, History, MessageLog, content_key, key_text, message_key
from tests.checks.scenario import PLAIN, Run


def test_an_int_id_is_its_own_key_and_anything_else_is_hashed_the_same_everywhere():
    assert message_key(17) == 17 and message_key(-(1 << 63)) == -(1 << 63)
    assert message_key(1 << 63) != 1 << 63 and -(1 << 63) <= message_key(1 << 63) < 1 << 63
    assert message_key("b-1") == message_key(b"b-1") != message_key("b-2")
    assert message_key("b-1") == -7247412897954511059  # pinned: workers and master must agree
    assert message_key(("x", 1)) == message_key(["x", 1])  # by JSON text
    code = "from history import message_key; print(message_key('b-1'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=".")
    assert int(other.stdout) == message_key("b-1")


def test_a_body_is_known_by_its_content_whatever_its_key_order():
    assert content_key({"a": 1, "b": [2, 3]}) == content_key({"b": [2, 3], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert content_key("text") == content_key(b"text")
    assert isinstance(content_key({1: "x", "y": 2}), int)  # keys that do not sort: repr, no error
    assert isinstance(content_key(object()), int)
    assert key_text(-1) == "ffffffffffffffff" and key_text(17) == "0000000000000011"


def test_a_log_keeps_arrivals_in_order_at_12_bytes_each():
    log = MessageLog(100.0)
    for n, key in enumerate((5, 3, 5, 9)):
        assert log.add(key, 100.0 + n * 0.5)
    assert list(log.keys) == [5, 3, 5, 9] and log.times() == [100.0, 100.5, 101.0, 101.5]
    assert log.entries()[1] == (3, 100.5) and log.last_at == 101.5 and len(log) == 4
    assert log.keys.itemsize + log.offsets.itemsize == 12


def test_a_full_log_is_a_prefix_and_counts_the_rest(monkeypatch):
    monkeypatch.setattr(history.messages, "LOG_CAP", 3)
    log = MessageLog(0.0)
    assert [log.add(k, float(k)) for k in range(5)] == [True, True, True, False, False]
    assert list(log.keys) == [0, 1, 2] and log.truncated == 2
    no_room = MessageLog(0.0)
    assert no_room.add(1, 0.0, room=False) is False
    assert no_room.add(2, 1.0) is False and len(no_room) == 0  # once truncated, never again: a prefix


def test_the_wire_form_is_base64_little_endian_and_round_trips_exactly():
    log = MessageLog(1_700_000_000.25)
    log.add(1, 1_700_000_000.25)
    log.add(-2, 1_700_000_003.75)
    d = log.to_dict()
    assert d == {"t0": 1_700_000_000.25, "keys": "AQAAAAAAAAD+/////////w==", "offsets": "AAAAAAAAYEA=",
                 "truncated": 0}
    back = MessageLog.from_dict(json.loads(json.dumps(d)))
    assert back == log and back.times() == [1_700_000_000.25, 1_700_000_003.75]
    assert MessageLog.from_dict({"t0": 1.0, "keys": d["keys"], "offsets": "", "truncated": 3}).keys.tolist() == []
    c = log.copy()
    c.add(7, 1_700_000_004.0)
    assert len(log) == 2 and len(c) == 3


def test_a_channel_record_without_a_log_is_written_as_before_and_older_ones_load():
    record = ChannelRecord(subscribed_at=1.0, deliveries=2, unstamped=2)
    assert "log" not in record.to_dict()
    assert ChannelRecord.from_dict(record.to_dict()) == record
    record.log = MessageLog(2.0)
    record.log.add(message_key("m1"), 2.0)
    d = record.to_dict()
    assert set(d["log"]) == {"t0", "keys", "offsets", "truncated"}
    assert ChannelRecord.from_dict(json.loads(json.dumps(d))) == record
    assert record.copy() == record and record.copy().log is not record.log


def _worker(process: str, label: str) -> History:
    run = Run(PLAIN, process=process)
    c = run.open(label, channels=("feed",))
    c.delivered("feed", None, None, "b-1", 2.0)
    c.delivered("feed", None, None, "b-2", 2.5)
    return run.history()


def test_the_workers_histories_keep_each_connections_log_through_json_and_merge():
    w1, w2 = _worker("w1", "a"), _worker("w2", "b")
    merged = History.from_json(w1.to_json()).merge(History.from_json(w2.to_json()))
    logs = {c.label: c.received["feed"].log for c in merged.connections}
    assert set(logs) == {"a", "b"}
    assert all(list(log.keys) == [message_key("b-1"), message_key("b-2")] for log in logs.values())
    assert History.from_json(merged.to_json()) == merged
    assert ConnectionHistory.from_dict(merged.connections[0].to_dict()) == merged.connections[0]
