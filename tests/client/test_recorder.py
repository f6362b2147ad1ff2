"""The Recorder fed scripted frames (plain dicts, no sockets)."""
import pytest

import client.recorder as recorder_module
from checks import run_checks
from checks.history import SEQ_ID_CAP, SeqSet, state_digest
from client.recorder import Recorder


def welcome(last_seq=0, replay=0, resumed=False, gap=None, conn_id="c1", interval=2.0):
    return {"type": "welcome", "conn_id": conn_id, "user": "alice",
            "heartbeat": {"interval": interval, "timeout": 1.0},
            "limits": {"max_connections_per_user": 5}, "last_seq": last_seq, "replay": replay,
            "resumed": resumed, "gap": gap, "token_exp": 0}


def msg(seq, mid, frm="bob"):
    return {"type": "message", "seq": seq, "from": frm, "id": mid, "data": {}}


def open_conn(rec, label="w1-alice-0", user="alice", requested=None, **kw):
    c = rec.connection(user, label)
    w = welcome(**kw)
    c.received(w, 1.0)
    c.opened(w, requested, 1.0)
    c.received({"type": "snapshot", "version": 0, "state": {}}, 1.0)
    return c


def only(rec):
    (c,) = rec.history().connections
    return c


def test_clean_stream():
    rec = Recorder("w1")
    c = open_conn(rec, last_seq=2, replay=2)
    for i, seq in enumerate([1, 2, 3, 4], start=1):
        c.received(msg(seq, f"w1-bob-0:{i}"), 1.0 + i)
    c.received({"type": "pong", "id": 1, "ts": 0}, 2.0)
    c.received({"type": "echo", "id": 2, "data": 1, "ts": 0}, 2.0)
    h = only(rec)
    assert (h.label, h.user, h.process, h.conn_id) == ("w1-alice-0", "alice", "w1", "c1")
    assert h.received == SeqSet([[1, 4]]) and h.last_seq == 4 and h.messages == 4
    assert h.expect_from == 1 and h.welcome_last_seq == 2 and h.replay == 2
    assert h.fifo == {"w1-bob-0": 4}
    assert h.seq_ids == {1: "w1-bob-0:1", 2: "w1-bob-0:2", 3: "w1-bob-0:3", 4: "w1-bob-0:4"}
    assert not h.duplicates and not h.out_of_order and not h.fifo_violations
    assert h.frames_in == {"welcome": 1, "snapshot": 1, "message": 4, "pong": 1, "echo": 1}
    assert (h.heartbeat_interval, h.heartbeat_timeout) == (2.0, 1.0)


def test_anomalies_are_sampled_with_evidence():
    rec = Recorder()
    c = open_conn(rec)
    for seq, mid, t in [(1, "s:1", 1.0), (3, "s:3", 2.0), (2, "s:2", 3.0), (3, "s:3", 4.0),
                        (4, "s:3", 5.0), (5, "s:1", 6.0), (6, 17, 7.0)]:
        c.received(msg(seq, mid), t)
    c.received({"type": "message", "id": "x"}, 8.0)
    h = only(rec)
    assert h.out_of_order.items == [{"seq": 2, "prev": 3, "t": 3.0}]
    assert h.fifo_violations.items == [{"sender": "s", "counter": 2, "prev": 3, "seq": 2, "t": 3.0},
                                       {"sender": "s", "counter": 1, "prev": 3, "seq": 5, "t": 6.0}]
    assert h.duplicates.items == [{"seq": 3, "id": "s:3", "t": 4.0}]
    assert h.duplicate_ids.items == [{"seq": 4, "id": "s:3", "t": 5.0}]
    assert h.malformed.total == 1
    assert h.received == SeqSet([[1, 6]]) and h.messages == 8 and h.last_seq == 6


def test_expect_from_rules():
    rec = Recorder()
    open_conn(rec, "a", last_seq=10, replay=3)  # fresh
    open_conn(rec, "b", requested=7, last_seq=10, replay=3, resumed=True)  # resumed
    open_conn(rec, "c", requested=50, last_seq=0, gap={"from": 51, "to": None})  # server forgot
    via_received_only = rec.connection("alice", "d")
    via_received_only.received(welcome(last_seq=4, replay=1), 1.0)
    a, b, c, d = rec.history().connections
    assert (a.expect_from, b.expect_from, c.expect_from, d.expect_from) == (8, 8, 1, 4)
    assert b.requested_last_seq == 7 and b.resumed is True
    assert c.gap == [51, None] and d.requested_last_seq is None


def test_acks_of_sends_by_recipient():
    rec = Recorder()
    c = open_conn(rec)
    c.sent({"type": "send", "id": "w1-alice-0:1", "to": "bob", "data": 1}, 1.0)
    c.sent({"type": "send", "id": "w1-alice-0:2", "to": "carol", "data": 1}, 1.0)
    c.sent({"type": "send", "id": "w1-alice-0:3", "to": "bob", "data": 1}, 1.0)
    c.sent({"type": "echo", "id": 9, "data": 1}, 1.0)
    c.received({"type": "ack", "id": "w1-alice-0:1", "seq": 7, "queued": False}, 2.0)
    c.received({"type": "ack", "id": "w1-alice-0:2", "seq": 1, "queued": True}, 2.0)
    c.received({"type": "error", "code": "queue_full", "id": "w1-alice-0:3", "message": ""}, 2.0)
    c.received({"type": "ack", "id": "w1-alice-0:3", "seq": 8}, 2.0)  # no longer in flight
    c.received({"type": "ack", "id": "nobody", "seq": 9}, 2.0)
    c2 = open_conn(rec, "w1-alice-1")
    c2.sent({"type": "send", "id": "w1-alice-1:1", "to": "bob", "data": 1}, 3.0)
    c2.received({"type": "ack", "id": "w1-alice-1:1", "seq": 8}, 3.0)
    h = rec.history()
    assert h.acks == {"bob": SeqSet([[7, 8]]), "carol": SeqSet([[1, 1]])}
    assert h.acked_ids_sample.total == 3
    assert {"user": "bob", "seq": 7, "id": "w1-alice-0:1", "t": 2.0} in h.acked_ids_sample.items
    first = h.connections[0]
    assert first.errors == {"queue_full": 1} and first.unmatched_acks == 2
    assert first.frames_out == {"send": 3, "echo": 1}


def test_in_flight_ids_are_bounded(monkeypatch):
    monkeypatch.setattr(recorder_module, "INFLIGHT_CAP", 3)
    rec = Recorder()
    c = open_conn(rec)
    for i in range(5):
        c.sent({"type": "send", "id": i, "to": "bob"}, 1.0)
    assert len(c._sends) == 3
    c.received({"type": "ack", "id": 0, "seq": 1}, 2.0)  # evicted: not counted
    c.received({"type": "ack", "id": 4, "seq": 5}, 2.0)
    assert rec.history().acks == {"bob": SeqSet([[5, 5]])}


def test_state_copy_patches_and_own_updates():
    rec = Recorder()
    c = rec.connection("alice", "t")
    c.opened(welcome(), None, 1.0)
    c.received({"type": "snapshot", "version": 2, "state": {"a": 1, "b": 2}}, 1.0)
    c.received({"type": "patch", "version": 3, "patch": {"b": None, "c": 3}}, 2.0)
    c.sent({"type": "update", "id": "u1", "base_version": 3, "patch": {"d": 4}}, 3.0)
    c.received({"type": "ack", "id": "u1", "version": 4}, 3.1)
    c.received({"type": "snapshot", "id": "s", "version": 4, "state": {"a": 1, "c": 3, "d": 4}}, 4.0)
    h = only(rec)
    assert h.version == 4 and not h.version_anomalies
    assert h.state_digest == state_digest({"a": 1, "c": 3, "d": 4})


def test_version_anomalies():
    rec = Recorder()
    c = rec.connection("alice", "t")
    c.opened(welcome(), None, 1.0)
    c.received({"type": "patch", "version": 1, "patch": {"x": 1}}, 1.0)
    c.received({"type": "snapshot", "version": 5, "state": {"a": 1}}, 2.0)
    c.received({"type": "patch", "version": 7, "patch": {"b": 1}}, 3.0)
    c.received({"type": "snapshot", "version": 6, "state": {}}, 4.0)
    c.received({"type": "snapshot", "version": 6, "state": {"stale": True}}, 5.0)
    c.sent({"type": "update", "id": "u", "base_version": 6, "patch": {}}, 6.0)
    c.received({"type": "ack", "id": "u", "version": 9}, 6.5)
    kinds = [(s["kind"], s["t"]) for s in only(rec).version_anomalies.items]
    assert kinds == [("patch_before_snapshot", 1.0), ("patch_version", 3.0),
                     ("snapshot_backwards", 4.0), ("snapshot_mismatch", 5.0),
                     ("ack_version", 6.5)]


def test_heartbeat_intervals():
    rec = Recorder()
    c = open_conn(rec)
    for t in (3.0, 5.0, 8.0, 9.0):
        c.server_ping(t)
    h = only(rec)
    assert h.pings == 4 and (h.first_ping_at, h.last_ping_at) == (3.0, 9.0)
    assert (h.ping_interval_min, h.ping_interval_max) == (1.0, 3.0)
    assert h.ping_interval_mean == pytest.approx(2.0)


def test_close_finish_and_open_at_end():
    rec = Recorder()
    a = open_conn(rec, "a")
    b = open_conn(rec, "b")
    a.closed(1000, "bye", "client", 5.0)
    a.closed(1006, "again", "abrupt", 6.0)  # a second report is ignored
    assert not rec.history().complete  # not finished yet
    rec.finish()
    b.closed(1000, "teardown", "client", 9.0)
    h = rec.history()
    ha, hb = h.connections
    assert (ha.close_code, ha.close_reason, ha.close_initiator, ha.closed_at) == (1000, "bye", "client", 5.0)
    assert not ha.open_at_end
    assert hb.open_at_end and hb.closed_at == 9.0
    assert h.complete and h.ended_at is not None and h.started_at <= h.ended_at
    rec.finish(complete=False)
    assert not rec.history().complete


def test_seq_ids_thin_deterministically():
    rec = Recorder()
    early, late = open_conn(rec, "early"), open_conn(rec, "late", last_seq=300)
    for seq in range(1, 2001):
        early.received(msg(seq, f"s:{seq}"), 1.0)
        if seq > 300:
            late.received(msg(seq, f"s:{seq}"), 1.0)
    e, lt = rec.history().connections
    assert len(e.seq_ids) <= SEQ_ID_CAP and len(lt.seq_ids) <= SEQ_ID_CAP
    assert all(s % e.seq_id_stride == 0 for s in e.seq_ids)
    assert e.seq_id_stride & (e.seq_id_stride - 1) == 0  # a power of two
    assert lt.seq_id_stride & (lt.seq_id_stride - 1) == 0
    common = set(e.seq_ids) & set(lt.seq_ids)
    assert len(common) >= SEQ_ID_CAP // 4
    assert all(e.seq_ids[s] == lt.seq_ids[s] == f"s:{s}" for s in common)


def test_history_is_a_snapshot():
    rec = Recorder()
    c = open_conn(rec)
    c.received(msg(1, "s:1"), 1.0)
    before = rec.history()
    c.received(msg(2, "s:2"), 2.0)
    assert before.connections[0].received == SeqSet([[1, 1]])
    assert rec.history().connections[0].received == SeqSet([[1, 2]])


def _run(drop: int | None):
    """Alice sends 5 messages to bob (two tabs); tab 2 misses seq `drop`."""
    rec = Recorder("w1")
    rec.server_stats_before = {"connections": 0, "users": 0, "registry_entries": 0}
    alice = open_conn(rec, "w1-alice-0")
    tabs = [open_conn(rec, f"w1-bob-{i}", user="bob", conn_id=f"b{i}") for i in range(2)]
    for n in range(1, 6):
        mid = f"w1-alice-0:{n}"
        alice.sent({"type": "send", "id": mid, "to": "bob", "data": n}, float(n))
        alice.received({"type": "ack", "id": mid, "seq": n, "queued": False}, n + 0.1)
        for i, tab in enumerate(tabs):
            if not (i == 1 and n == drop):
                tab.received(msg(n, mid, "alice"), n + 0.2)
    rec.finish()
    for c in [alice, *tabs]:
        c.closed(1000, "", "client", 10.0)
    rec.server_stats_after = dict(rec.server_stats_before)
    return {v.name: v for v in run_checks(rec.history(), ["ordering", "duplicates", "loss",
                                                          "cleanup", "state"])}


def test_recorded_run_passes_the_checks():
    assert {n: v.valid for n, v in _run(None).items()} == {
        "ordering": True, "duplicates": True, "loss": True, "cleanup": True, "state": True}


def test_recorded_loss_is_caught():
    loss = _run(drop=3)["loss"]
    assert loss.valid is False
    assert loss.anomalies[0].evidence["label"] == "w1-bob-1"
    assert loss.anomalies[0].evidence["missing"] == [[3, 3]]


def test_reconnect_through_the_same_recorder_is_a_new_connection():
    rec = Recorder()
    c = open_conn(rec, conn_id="c1")
    c.received(msg(1, "s:1"), 2.0)
    c.closed(1006, "", "abrupt", 3.0)
    c.opened(welcome(last_seq=2, conn_id="c2"), 1, 4.0)
    c.received(welcome(last_seq=2, conn_id="c2"), 4.0)
    c.received(msg(2, "s:2"), 4.5)
    rec.finish()
    first, second = rec.history().connections
    assert (first.conn_id, first.closed_at, first.open_at_end) == ("c1", 3.0, False)
    assert first.received == SeqSet([[1, 1]])
    assert (second.conn_id, second.expect_from, second.open_at_end) == ("c2", 2, True)
    assert second.received == SeqSet([[2, 2]]) and second.closed_at is None
