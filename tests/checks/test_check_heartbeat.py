import pytest

from checks.heartbeat import check_heartbeat
from checks.verdict import UNKNOWN
from history import History
from tests.checks.scenario import PLAIN, SOCKETPROOF, Run


def pinged(run, label, pings, heartbeat=(2.0, 1.0), opened_at=0.5, close=None):
    c = run.open(label, t=opened_at, heartbeat=heartbeat)
    for t in pings:
        c.keepalive(t)
    if close:
        c.closed(*close)
    return c


def judge(run, **kw):
    return check_heartbeat(run.history(end=9.0), **kw)


def test_empty_is_unknown():
    assert check_heartbeat(History(complete=True)).valid == UNKNOWN


def test_regular_announced_pings_pass():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (2.0, 4.0, 6.0, 8.0))
    r = judge(run)
    assert r.valid is True and r.stats["connections_checked"] == 1 and r.stats["announced"] == 1


def test_no_pings_with_announced_interval():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", ())
    (a,) = judge(run).anomalies
    assert a.kind == "no_pings" and a.evidence["label"] == "t1" and a.evidence["interval_source"] == "advertised"


def test_announced_interval_anomalies():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (2.0, 2.2, 7.0, 8.0))
    kinds = sorted(a.kind for a in judge(run).anomalies)
    assert kinds == ["interval_max", "interval_min"]
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (4.0, 5.5))
    kinds = sorted(a.kind for a in judge(run).anomalies)
    assert kinds == ["ping_silence", "ping_silence"]


def test_close_1008_is_a_heartbeat_timeout():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (2.0, 4.0), close=(1008, "heartbeat timeout", "server", 5.0))
    assert [a.kind for a in judge(run).anomalies] == ["heartbeat_timeout"]


def test_short_lived_connection_is_not_judged():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (), close=(1000, "", "client", 3.0))
    r = judge(run)
    assert r.valid == UNKNOWN and "two heartbeat intervals" in r.stats["reason"]


def test_unannounced_judged_against_the_observed_interval():
    run = Run(PLAIN)
    for i in range(3):
        pinged(run, f"ok{i}", (1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5), heartbeat=None)
    pinged(run, "silent", (), heartbeat=None)
    pinged(run, "gappy", (1.5, 2.5, 7.0, 8.0, 8.9), heartbeat=None)
    r = judge(run)
    assert r.stats["observed_interval"] == pytest.approx(1.0)
    found = {(a.kind, a.evidence["label"]) for a in r.anomalies}
    assert found == {("no_pings", "silent"), ("interval_max", "gappy")}
    assert all(a.evidence["interval_source"] == "observed" for a in r.anomalies)


def test_unannounced_regular_pings_pass():
    run = Run(PLAIN)
    for i in range(2):
        pinged(run, f"ok{i}", (1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5), heartbeat=None)
    assert judge(run).valid is True


def test_no_announcement_and_no_pings_is_unknown_with_reason():
    run = Run(PLAIN)
    pinged(run, "t1", (), heartbeat=None)
    r = judge(run)
    assert r.valid == UNKNOWN
    assert r.stats["reason"] == "the custom adapter announces no heartbeat and the server sent no pings"


def test_incomplete_is_unknown():
    run = Run(SOCKETPROOF)
    pinged(run, "t1", (2.0, 4.0, 6.0, 8.0))
    assert check_heartbeat(run.history(complete=False, end=9.0)).valid == UNKNOWN


def test_bad_options():
    with pytest.raises(ValueError, match="tolerance"):
        check_heartbeat(History(), tolerance=1.5)
    with pytest.raises(ValueError, match="far"):
        check_heartbeat(History(), far=0.5)
