"""SeqSet, Samples and the History JSON contract."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.history import (
    HISTORY_VERSION,
    RUN_CAP,
    SAMPLE_CAP,
    Arrivals,
    History,
    Samples,
    SeqSet,
    state_digest,
)
from client.adapter import ResumeInfo
from tests.checks.scenario import SOCKETPROOF, Run


def test_seqset_in_order_adds_make_one_range():
    s = SeqSet()
    assert all(s.add(i) for i in range(1, 1001))
    assert s.ranges() == [[1, 1000]]
    assert s.count() == len(s) == 1000
    assert (s.first, s.last) == (1, 1000)


def test_seqset_add_reports_duplicates():
    s = SeqSet()
    assert s.add(5) is True
    assert s.add(5) is False
    assert s.add(3) is True
    assert s.add(3) is False
    assert s.ranges() == [[3, 3], [5, 5]]


def test_seqset_fills_hole_joining_both_sides():
    s = SeqSet([[1, 3], [5, 7]])
    assert s.add(4)
    assert s.ranges() == [[1, 7]]


def test_seqset_joins_left_right_or_inserts():
    s = SeqSet([[1, 2], [10, 11]])
    s.add(3)   # joins left
    s.add(9)   # joins right
    s.add(6)   # alone in the middle
    s.add(0)   # before everything, adjacent
    s.add(-5)  # before everything, alone
    assert s.ranges() == [[-5, -5], [0, 3], [6, 6], [9, 11]]


def test_seqset_contains():
    s = SeqSet([[2, 4], [8, 8]])
    assert [x for x in range(0, 10) if x in s] == [2, 3, 4, 8]
    assert "3" not in s
    assert 3 not in SeqSet()


def test_seqset_missing():
    s = SeqSet([[3, 5], [8, 9]])
    assert s.missing(1, 10) == [[1, 2], [6, 7], [10, 10]]
    assert s.missing(3, 5) == []
    assert s.missing(4, 8) == [[6, 7]]
    assert s.missing(6, 6) == [[6, 6]]
    assert s.missing(5, 4) == []
    assert SeqSet().missing(1, 3) == [[1, 3]]
    assert s.missing(20, 22) == [[20, 22]]


def test_seqset_from_list_normalises_and_rejects_bad_ranges():
    assert SeqSet.from_list([[5, 6], [1, 2], [3, 4], [2, 3]]).ranges() == [[1, 6]]
    assert SeqSet.from_list([[1, 5], [2, 3]]).ranges() == [[1, 5]]
    with pytest.raises(ValueError, match="lo > hi"):
        SeqSet([[3, 1]])


def test_seqset_union_and_equality():
    a, b = SeqSet([[1, 3], [10, 10]]), SeqSet([[4, 6], [9, 9]])
    u = a.union(b)
    assert u == SeqSet([[1, 6], [9, 10]])
    assert a.ranges() == [[1, 3], [10, 10]]  # operands unchanged
    assert SeqSet().union(SeqSet()) == SeqSet()
    assert not SeqSet() and SeqSet([[1, 1]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-20, max_value=60), max_size=80),
       st.integers(-25, 65), st.integers(-25, 65))
def test_seqset_behaves_like_a_set(values, lo, hi):
    s, ref = SeqSet(), set()
    for v in values:
        assert s.add(v) == (v not in ref)
        ref.add(v)
    assert s.count() == len(ref)
    ranges = s.ranges()
    assert all(a <= b for a, b in ranges)
    assert all(ranges[i][1] + 1 < ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert {x for a, b in ranges for x in range(a, b + 1)} == ref
    expected_missing = [x for x in range(lo, hi + 1) if x not in ref]
    assert [x for a, b in s.missing(lo, hi) for x in range(a, b + 1)] == expected_missing
    assert SeqSet.from_list(json.loads(json.dumps(s.to_list()))) == s


def test_samples_cap_keeps_total():
    s = Samples()
    for i in range(SAMPLE_CAP + 5):
        s.add({"i": i})
    assert s.total == SAMPLE_CAP + 5
    assert len(s.items) == SAMPLE_CAP
    m = s.merge(Samples(1, [{"i": "x"}]))
    assert m.total == SAMPLE_CAP + 6 and len(m.items) == SAMPLE_CAP
    assert not Samples() and Samples(1, [{}])


def test_capped_seqset_counts_what_it_drops():
    s = SeqSet(cap=2)
    for v in (1, 2, 5, 9, 3, 7):
        s.add(v)
    assert s.ranges() == [[1, 3], [5, 5]] and s.overflow == 2  # 9 and 7 needed a third range
    u = s.union(SeqSet([[20, 20]], cap=2, overflow=1))
    assert u.ranges() == [[1, 3], [5, 5]] and u.overflow == 4  # [20, 20] dropped too


def test_arrivals_keep_order_in_runs():
    a = Arrivals(1, 0.1)
    for v, t in ((2, 0.2), (3, 0.3), (7, 0.4), (8, 0.5), (3, 0.6), (4, 0.7)):
        a.add(v, t)
    assert a.run_list() == [(1, 3, 0.1), (7, 8, 0.4), (3, 4, 0.6)]
    assert a.received() == SeqSet([[1, 4], [7, 8]]) and a.last_at == 0.7
    for v in range(10, 10 + 2 * RUN_CAP, 2):
        a.add(v, 1.0)
    assert len(a.run_list()) == RUN_CAP and a.truncated and a.overflow == 3
    assert Arrivals.from_dict(a.to_dict()) == a


def _full_history() -> History:
    """Every kind of field, recorded through the Recorder."""
    run = Run(SOCKETPROOF, adapter="socketproof")
    a = run.open("w1-alice-0", "alice", ("alice",), t=1.5, heartbeat=(20.0, 10.0),
                 resume=ResumeInfo(requested=2, server_last=5, replay=3, resumed=True, gap=(3, None)))
    b = run.open("w1-bob-0", "bob", ("bob",))
    for n in range(3):
        run.broadcast(b, "w1-bob-0", "alice", [a], 2.0 + n)
    run.publish(b, "w1-bob-0", "alice", 6.0, fail="queue_full")
    a.keepalive(2.0)
    a.keepalive(4.0)
    a.state("snapshot", 2, {"a": 1}, None, None, 2.0)
    a.update_sent("u1", {"b": 2}, 2.5)
    a.state("ack", 3, None, None, "u1", 2.6)
    a.frame("in", "message")
    a.error("queue_full", 3.0)
    a.closed(1000, "bye", "client", 9.0)
    run.rec.server_stats_before = run.rec.server_stats_after = {"connections": 0}
    run.rec.server_connections_before, run.rec.server_connections_after = 3, 3
    run.rec.server_connections_source = "http://127.0.0.1:1/metrics#open"
    return run.history()


def test_history_json_round_trip():
    h = _full_history()
    text = h.to_json()
    back = History.from_json(text)
    assert back == h
    alice = back.connections[0]
    assert alice.received["alice"].senders["w1-bob-0"].run_list() == [(1, 3, 2.05)]
    assert alice.received["alice"].seq_ids == {1: "w1-bob-0:1", 2: "w1-bob-0:2", 3: "w1-bob-0:3"}
    assert alice.gap == [3, None] and alice.expect_from == 3 and alice.version == 3
    assert back.published["w1-bob-0"]["alice"].failed == SeqSet([[4, 4]])
    assert back.capabilities == SOCKETPROOF and back.adapter == "socketproof"
    assert back.to_json() == text


def test_history_refuses_other_versions():
    d = _full_history().to_dict()
    for version in (1, HISTORY_VERSION + 1, None):
        d["version"] = version
        with pytest.raises(ValueError, match="not supported"):
            History.from_dict(d)
    with pytest.raises(ValueError, match="cannot merge"):
        History(version=1).merge(History())


def test_merge_unions_everything():
    a = _full_history()
    run = Run(SOCKETPROOF - {"resume"}, adapter="socketproof", process="w2")
    bob2 = run.open("w2-bob-0", "bob", ("bob",))
    run.counters[("w1-bob-0", "alice")] = 4  # the same sender label published on both workers
    run.seqs["alice"] = 4
    run.publish(bob2, "w1-bob-0", "alice", 7.0)
    run.rec.server_stats_after = {"connections": 3}
    b = run.history(end=12.0)
    b.started_at = 0.5
    m = a.merge(b)
    assert (m.started_at, m.ended_at, m.complete) == (0.0, 12.0, True)
    assert [c.label for c in m.connections] == ["w1-alice-0", "w1-bob-0", "w2-bob-0"]
    assert m.published["w1-bob-0"]["alice"].acked == SeqSet([[1, 3], [5, 5]])
    assert m.acked_seqs["alice"].top == 5 and m.acked_seqs["alice"].count == 4
    assert m.capabilities == SOCKETPROOF - {"resume"}  # only what every part had
    assert m.server_stats_after == {"connections": 0}  # self's wins when both have one
    assert m.server_connections_source == "http://127.0.0.1:1/metrics#open"
    assert a.published["w1-bob-0"]["alice"].acked == SeqSet([[1, 3]])  # operands unchanged
    assert not a.merge(History(complete=False)).complete
    assert History(complete=True).merge(a).capabilities == SOCKETPROOF  # an empty part knows nothing


def test_state_digest_ignores_key_order():
    assert state_digest({"a": 1, "b": [1, 2]}) == state_digest({"b": [1, 2], "a": 1})
    assert state_digest({"a": 1}) != state_digest({"a": 2})
