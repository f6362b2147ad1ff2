"""Reading arrival runs back (checks.streams.analyse): what came, what came twice, what came late."""
from checks.streams import analyse
from history import SAMPLE_CAP, Arrivals, SeqSet


def arrivals(*values: int) -> Arrivals:
    a = Arrivals(values[0], 0.0)
    for i, v in enumerate(values[1:], 1):
        a.add(v, float(i))
    return a


def test_a_clean_stream_has_nothing_to_say():
    f = analyse(arrivals(1, 2, 3, 4))
    assert f.received == SeqSet([[1, 4]])
    assert (f.duplicates, f.late, f.truncated, f.duplicate_samples, f.late_samples) == (0, 0, 0, [], [])


def test_a_hole_is_neither_late_nor_a_duplicate():
    f = analyse(arrivals(1, 2, 5, 6))
    assert f.received == SeqSet([[1, 2], [5, 6]]) and (f.duplicates, f.late) == (0, 0)


def test_a_value_again_is_a_duplicate_with_its_run_and_what_came_before():
    f = analyse(arrivals(1, 2, 3, 2, 3, 4))
    assert (f.duplicates, f.late) == (2, 0)
    assert f.duplicate_samples == [{"value": 2, "count": 2, "prev": 3, "t": 3.0}]


def test_a_new_value_below_the_highest_is_late():
    f = analyse(arrivals(1, 3, 2, 4))
    assert (f.duplicates, f.late) == (0, 1)
    assert f.late_samples == [{"value": 2, "count": 1, "prev": 3, "t": 2.0}]
    assert f.received == SeqSet([[1, 4]])


def test_one_run_can_be_late_and_duplicate_at_once():
    f = analyse(arrivals(1, 2, 5, 6, 2, 3, 4))  # run [2, 4]: 2 again, 3 and 4 late
    assert (f.duplicates, f.late) == (1, 2)


def test_samples_are_capped_but_counts_are_not():
    values = [1]
    for n in range(SAMPLE_CAP + 5):
        values += [100 + 2 * n, 1]  # 1 again after each new value
    f = analyse(arrivals(*values))
    assert f.duplicates == SAMPLE_CAP + 5 and len(f.duplicate_samples) == SAMPLE_CAP


def test_truncation_is_reported():
    a = arrivals(1, 2)
    a.add(9, 3.0, budget=0)
    assert analyse(a).truncated == 1
