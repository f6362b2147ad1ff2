"""SeqSet, Samples and the History JSON contract."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.history import (
    HISTORY_VERSION,
    SAMPLE_CAP,
    ConnectionHistory,
    History,
    Samples,
    SeqSet,
    state_digest,
)


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


def _full_history() -> History:
    c = ConnectionHistory(label="w1-alice-0", user="alice", process="w1", conn_id="c7",
                          opened_at=1.5, closed_at=9.0, close_code=1000, close_reason="bye",
                          close_initiator="client", requested_last_seq=2, welcome_last_seq=5,
                          replay=3, resumed=True, gap=[3, None], expect_from=3,
                          received=SeqSet([[3, 7]]), last_seq=7, messages=6,
                          seq_ids={4: "w1-bob-0:1", 6: "w1-bob-0:2"}, seq_id_stride=2,
                          version=3, state_digest=state_digest({"a": 1}),
                          heartbeat_interval=20, heartbeat_timeout=10, pings=2,
                          first_ping_at=2.0, last_ping_at=4.0, ping_interval_min=2.0,
                          ping_interval_max=2.0, ping_interval_sum=2.0,
                          errors={"queue_full": 1}, frames_in={"message": 6},
                          fifo={"w1-bob-0": 2})
    c.duplicates.add({"seq": 5, "id": "w1-bob-0:1", "t": 3.0})
    return History(started_at=1.0, ended_at=10.0, complete=True, connections=[c],
                   acks={"alice": SeqSet([[1, 7]])}, acked_ids_sample=Samples(1, [{"seq": 1}]),
                   server_stats_before={"connections": 0}, server_stats_after={"connections": 0})


def test_history_json_round_trip():
    h = _full_history()
    text = h.to_json()
    back = History.from_json(text)
    assert back == h
    assert back.connections[0].seq_ids == {4: "w1-bob-0:1", 6: "w1-bob-0:2"}
    assert back.connections[0].received == SeqSet([[3, 7]])
    assert back.to_json() == text


def test_history_refuses_other_versions():
    d = _full_history().to_dict()
    d["version"] = HISTORY_VERSION + 1
    with pytest.raises(ValueError, match="not supported"):
        History.from_dict(d)


def test_merge_unions_everything():
    a = _full_history()
    b = History(started_at=0.5, ended_at=12.0, complete=True,
                connections=[ConnectionHistory(label="w2-bob-0", user="bob", process="w2")],
                acks={"alice": SeqSet([[8, 9]]), "bob": SeqSet([[1, 1]])},
                acked_ids_sample=Samples(2, [{"seq": 8}]), server_stats_after={"connections": 3})
    m = a.merge(b)
    assert (m.started_at, m.ended_at, m.complete) == (0.5, 12.0, True)
    assert [c.label for c in m.connections] == ["w1-alice-0", "w2-bob-0"]
    assert m.acks == {"alice": SeqSet([[1, 9]]), "bob": SeqSet([[1, 1]])}
    assert m.acked_ids_sample.total == 3
    assert m.server_stats_before == {"connections": 0}
    assert m.server_stats_after == {"connections": 0}  # self's wins when both have one
    assert a.acks["alice"] == SeqSet([[1, 7]])  # operands unchanged
    assert not a.merge(History(complete=False)).complete


def test_state_digest_ignores_key_order():
    assert state_digest({"a": 1, "b": [1, 2]}) == state_digest({"b": [1, 2], "a": 1})
    assert state_digest({"a": 1}) != state_digest({"a": 2})
