from checks.cleanup import NO_SOURCE, check_cleanup
from checks.verdict import UNKNOWN
from history import History

STATS = {"connections": 2, "users": 1, "registry_entries": 1}


def hist(complete=True, **kw):
    return History(complete=complete, **kw)


def test_no_source_is_unknown_with_the_option_to_pass():
    r = check_cleanup(hist())
    assert r.valid == UNKNOWN and r.stats["reason"] == NO_SOURCE
    assert "--server-connections URL#metric" in NO_SOURCE


def test_stats_back_to_start_pass_and_leak_fails():
    assert check_cleanup(hist(server_stats_before=STATS, server_stats_after=dict(STATS))).valid is True
    r = check_cleanup(hist(server_stats_before=STATS, server_stats_after={**STATS, "connections": 5}))
    (a,) = r.anomalies
    assert a.kind == "leak" and a.evidence == {"source": "/stats", "field": "connections", "before": 2,
                                               "after": 5, "leaked": 3}


def test_generic_connection_count():
    src = "http://127.0.0.1:9/metrics#socketio_connected"
    ok = hist(server_connections_before=4, server_connections_after=4, server_connections_source=src)
    assert check_cleanup(ok).valid is True
    below = hist(server_connections_before=4, server_connections_after=1, server_connections_source=src)
    assert check_cleanup(below).valid is True
    leak = hist(server_connections_before=4, server_connections_after=7, server_connections_source=src)
    (a,) = check_cleanup(leak).anomalies
    assert a.kind == "leak" and a.evidence["source"] == src and a.evidence["leaked"] == 3


def test_a_missing_reading_is_unknown():
    r = check_cleanup(hist(server_stats_before=STATS))
    assert r.valid == UNKNOWN and r.stats["reason"] == "no server /stats after the run"
    r = check_cleanup(hist(server_connections_before=3, server_connections_source="m"))
    assert r.valid == UNKNOWN and r.stats["reason"] == "no reading of m after the run"


def test_incomplete_is_unknown_but_a_leak_still_fails():
    assert check_cleanup(hist(False, server_stats_before=STATS, server_stats_after=STATS)).valid == UNKNOWN
    leak = hist(False, server_connections_before=0, server_connections_after=1)
    assert check_cleanup(leak).valid is False
