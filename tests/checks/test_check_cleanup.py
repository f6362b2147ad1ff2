from checks.cleanup import check_cleanup
from checks.history import History
from checks.verdict import UNKNOWN

ZERO = {"connections": 0, "users": 0, "registry_entries": 0, "uptime_s": 1}


def test_missing_stats_is_unknown():
    assert check_cleanup(History(complete=True)).valid == UNKNOWN
    assert check_cleanup(History(complete=True, server_stats_before=ZERO)).valid == UNKNOWN
    assert check_cleanup(History(complete=True, server_stats_after=ZERO)).valid == UNKNOWN


def test_clean_server_passes():
    h = History(complete=True, server_stats_before=ZERO, server_stats_after=dict(ZERO))
    assert check_cleanup(h).valid is True


def test_fewer_after_is_fine():
    before = {"connections": 2, "users": 1, "registry_entries": 3}
    h = History(complete=True, server_stats_before=before, server_stats_after=ZERO)
    assert check_cleanup(h).valid is True


def test_leak_is_reported_per_field():
    after = {"connections": 3, "users": 0, "registry_entries": 4}
    r = check_cleanup(History(complete=True, server_stats_before=ZERO, server_stats_after=after))
    assert r.valid is False
    assert [(a.kind, a.evidence["field"], a.evidence["leaked"]) for a in r.anomalies] == [
        ("leak", "connections", 3), ("leak", "registry_entries", 4)]


def test_missing_field_or_incomplete_is_unknown():
    h = History(complete=True, server_stats_before={"connections": 0}, server_stats_after=ZERO)
    assert check_cleanup(h).valid == UNKNOWN
    h = History(complete=False, server_stats_before=ZERO, server_stats_after=ZERO)
    assert check_cleanup(h).valid == UNKNOWN


def test_a_single_leaked_entry_counts():
    after = dict(ZERO, users=1)
    r = check_cleanup(History(complete=True, server_stats_before=ZERO, server_stats_after=after))
    assert r.valid is False and r.anomalies[0].evidence == {
        "field": "users", "before": 0, "after": 1, "leaked": 1}
