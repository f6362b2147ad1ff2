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


# -- a heartbeat announced as a maximum silence (STOMP: any inbound message is a sign of life) ---------

def silent_kind(run, label, signs, interval=1.0, opened_at=0.5, close=None):
    """A connection whose protocol announced `interval` as its longest silence; `signs` are the
    times of every inbound message (the session reports each as a KeepAlive)."""
    c = run.rec.connection(label, label)
    c.opened(opened_at, conn_id=label.upper(), channels=(), heartbeat=(interval, interval), resume=None,
             capabilities=run.caps, heartbeat_kind="max_silence")
    for t in signs:
        c.keepalive(t)
    if close:
        c.closed(*close)
    return c


def test_max_silence_passes_a_server_that_beats_only_when_idle():
    """A busy stretch (frames 0.05 s apart), then idle beats up to two periods apart (RabbitMQ
    checks once a period): no interval_min, interval_mean nor no_pings, where a steady interval fails."""
    signs = [1.0 + i * 0.05 for i in range(40)] + [4.5, 6.4, 8.3]
    run = Run(PLAIN)
    silent_kind(run, "stomp", signs)
    r = judge(run)
    assert r.valid is True, r.anomalies
    run = Run(PLAIN)
    pinged(run, "steady", signs, heartbeat=(1.0, 1.0))
    assert {a.kind for a in judge(run).anomalies} >= {"interval_min", "interval_max"}


def test_max_silence_fails_a_long_silence_and_a_silent_connection():
    run = Run(PLAIN)
    silent_kind(run, "gap", [1.0, 1.5, 5.0, 6.0, 7.0, 8.0])  # 3.5 s silent: more than far (3) periods
    silent_kind(run, "mute", [])
    silent_kind(run, "tail", [1.0, 2.0, 3.0, 4.0])  # nothing in the last 5 s before the end (9.0)
    r = judge(run)
    assert r.valid is False
    found = {(a.evidence["label"], a.kind) for a in r.anomalies}
    assert found == {("gap", "interval_max"), ("mute", "no_pings"), ("tail", "ping_silence")}, found
    first = next(a for a in r.anomalies if a.kind == "interval_max")
    assert first.evidence["interval_source"] == "advertised max silence" and first.evidence["max"] == 3.5
    assert "no server frame" in next(a for a in r.anomalies if a.kind == "no_pings").message


def test_max_silence_close_1008_is_a_heartbeat_timeout():
    run = Run(PLAIN)
    silent_kind(run, "t1", [1.0, 2.0, 3.0, 4.0], close=(1008, "missed heart-beats", "server", 4.5))
    assert [a.kind for a in judge(run).anomalies] == ["heartbeat_timeout"]


def test_max_silence_is_kept_through_the_history_and_folding():
    from checks.heartbeat import facts, irregularity
    run = Run(PLAIN)
    c = silent_kind(run, "t1", [1.0 + i * 0.01 for i in range(100)] + [3.0, 5.0, 7.0, 8.9])
    h = History.from_dict(run.history(end=9.0).to_dict())
    (conn,) = h.connections
    assert conn.heartbeat_kind == "max_silence"
    f = facts(conn, 9.0)
    assert f["kind"] == "max_silence" and irregularity(f) == 2.0  # the longest gap, not the 0.01 s ones
    assert c is not None
    run = Run(PLAIN)
    pinged(run, "steady", (2.0, 4.0, 6.0, 8.0), heartbeat=(2.0, 1.0))
    (conn,) = run.history(end=9.0).connections
    assert conn.heartbeat_kind is None  # steady is the default and is not written
