import pytest

from checks.heartbeat import check_heartbeat
from checks.history import ConnectionHistory, History
from checks.verdict import UNKNOWN


def pinged(label="t1", pings=(2.0, 4.0, 6.0, 8.0), opened_at=0.5, **kw):
    """A connection advertised a 2 s interval, pinged at the given times."""
    c = ConnectionHistory(label=label, user="alice", conn_id="c1", opened_at=opened_at,
                          heartbeat_interval=2.0, heartbeat_timeout=1.0, **kw)
    if "closed_at" not in kw:
        c.open_at_end = True
    prev = None
    for t in pings:
        c.pings += 1
        if prev is None:
            c.first_ping_at = t
        else:
            d = t - prev
            c.ping_interval_sum += d
            c.ping_interval_min = d if c.ping_interval_min is None else min(c.ping_interval_min, d)
            c.ping_interval_max = d if c.ping_interval_max is None else max(c.ping_interval_max, d)
        prev = c.last_ping_at = t
    return c


def hist(*conns, complete=True, ended_at=9.0):
    return History(started_at=0.0, ended_at=ended_at, complete=complete, connections=list(conns))


def test_empty_is_unknown():
    assert check_heartbeat(History(complete=True)).valid == UNKNOWN


def test_regular_pings_pass():
    r = check_heartbeat(hist(pinged()))
    assert r.valid is True and r.stats["connections_checked"] == 1


def test_short_connections_are_unknown():
    c = pinged(pings=(), opened_at=6.0)  # lived 3 s < 2 intervals
    assert check_heartbeat(hist(c)).valid == UNKNOWN


def test_incomplete_is_unknown():
    assert check_heartbeat(hist(pinged(), complete=False)).valid == UNKNOWN


def test_no_pings_on_long_connection():
    r = check_heartbeat(hist(pinged(pings=())))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "no_pings"
    assert a.evidence["label"] == "t1" and a.evidence["interval"] == 2.0


def test_irregular_intervals():
    r = check_heartbeat(hist(pinged(pings=(2.0, 2.5, 8.0))))
    kinds = {a.kind for a in r.anomalies}
    assert {"interval_min", "interval_max"} <= kinds
    assert r.valid is False
    mn = next(a for a in r.anomalies if a.kind == "interval_min")
    assert mn.evidence["min"] == pytest.approx(0.5)


def test_mean_too_long():
    r = check_heartbeat(hist(pinged(pings=(1.0, 4.5, 8.0)), ended_at=9.0))
    assert "interval_mean" in {a.kind for a in r.anomalies}


def test_pings_that_stop_are_a_silence():
    r = check_heartbeat(hist(pinged(pings=(2.0, 4.0)), ended_at=9.0))
    (a,) = r.anomalies
    assert a.kind == "ping_silence" and a.evidence["where"] == "after the last ping"
    assert a.evidence["silence"] == pytest.approx(5.0)


def test_tolerance_is_a_parameter():
    c = pinged(pings=(2.0, 4.9, 7.8))
    assert check_heartbeat(hist(c), tolerance=0.5).valid is True
    assert check_heartbeat(hist(c), tolerance=0.2).valid is False
    with pytest.raises(ValueError):
        check_heartbeat(hist(c), tolerance=1.5)


def test_1008_close_is_an_anomaly_even_on_short_connection():
    c = pinged(pings=(), opened_at=6.0, closed_at=7.0, close_code=1008,
               close_reason="heartbeat timeout", close_initiator="server")
    r = check_heartbeat(hist(c))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "heartbeat_timeout" and a.evidence["close_code"] == 1008


def test_closed_connection_uses_its_close_time():
    c = pinged(pings=(2.0, 4.0, 6.0), closed_at=7.0, close_code=1000)
    assert check_heartbeat(hist(c, ended_at=100.0)).valid is True
