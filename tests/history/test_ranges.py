"""SeqSet, Samples and Arrivals: the bounded value types of the history, and the one
run-extension rule (`Arrivals.add`) with its budget."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from history.ranges import RANGE_CAP, RUN_CAP, SAMPLE_CAP, Arrivals, Samples, SeqSet, capped_from_dict, capped_to_dict


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


def test_seqset_add_range_merges_what_it_touches():
    s = SeqSet([[1, 2], [5, 6], [10, 12]])
    s.add_range(3, 9)
    assert s.ranges() == [[1, 12]]
    s.add_range(20, 25)
    s.add_range(14, 14)
    assert s.ranges() == [[1, 12], [14, 14], [20, 25]]


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


def test_seqset_intersect():
    s = SeqSet([[3, 5], [8, 9]])
    assert s.intersect([[1, 3], [5, 8], [20, 30]]) == [[3, 3], [5, 5], [8, 8]]
    assert SeqSet().intersect([[1, 2]]) == []


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


def test_capped_seqset_counts_what_it_drops():
    s = SeqSet(cap=2)
    for v in (1, 2, 5, 9, 3, 7):
        s.add(v)
    assert s.ranges() == [[1, 3], [5, 5]] and s.overflow == 2  # 9 and 7 needed a third range
    u = s.union(SeqSet([[20, 20]], cap=2, overflow=1))
    assert u.ranges() == [[1, 3], [5, 5]] and u.overflow == 4  # [20, 20] dropped too


def test_capped_seqset_wire_form():
    s = SeqSet([[1, 3], [7, 7]], cap=RANGE_CAP, overflow=2)
    assert capped_to_dict(s) == {"ranges": [[1, 3], [7, 7]], "overflow": 2}
    back = capped_from_dict(json.loads(json.dumps(capped_to_dict(s))))
    assert back == s and back.cap == RANGE_CAP
    assert capped_from_dict(None) == SeqSet()


def test_samples_cap_keeps_total():
    s = Samples()
    for i in range(SAMPLE_CAP + 5):
        s.add({"i": i})
    assert s.total == SAMPLE_CAP + 5
    assert len(s.items) == SAMPLE_CAP
    m = s.merge(Samples(1, [{"i": "x"}]))
    assert m.total == SAMPLE_CAP + 6 and len(m.items) == SAMPLE_CAP
    assert not Samples() and Samples(1, [{}])
    assert Samples.from_dict(m.to_dict()) == m


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


def test_arrivals_add_says_when_it_starts_a_run():
    a = Arrivals(5, 0.0)
    assert [a.add(v, 1.0) for v in (6, 7, 3, 4, 9)] == [0, 0, 1, 0, 1]
    assert a.run_list() == [(5, 7, 0.0), (3, 4, 1.0), (9, 9, 1.0)]


def test_arrivals_budget_stops_new_runs_but_not_extensions():
    a = Arrivals(1, 0.0)
    assert a.add(5, 1.0, budget=1) == 1
    assert a.add(9, 2.0, budget=0) == 0  # would start a run: only counted
    assert a.add(6, 3.0, budget=0) == 0  # extends the last run: kept whatever the budget
    assert a.run_list() == [(1, 1, 0.0), (5, 6, 1.0)] and a.overflow == 1 and a.last_at == 3.0


def test_arrivals_from_dict_needs_a_run():
    with pytest.raises(ValueError, match="at least one run"):
        Arrivals.from_dict({"runs": []})
    a = Arrivals.from_dict({"runs": [[1, 2, 0.5]]})
    assert a.last_at == 0.5 and a.copy() == a
