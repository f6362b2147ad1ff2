from checks.duplicates import check_duplicates
from checks.verdict import UNKNOWN
from client.adapter import Stamp
from history import History
from tests.checks.scenario import ACKED, SOCKETPROOF, Run


def setup(caps):
    run = Run(caps)
    return run, run.open("s"), run.open("r", channels=("room",))


def test_empty_is_unknown():
    assert check_duplicates(History(complete=True)).valid == UNKNOWN


def test_clean_passes():
    run, s, r = setup(ACKED)
    for n in range(4):
        run.broadcast(s, "s", "room", [r], 2.0 + n)
    v = check_duplicates(run.history())
    assert v.valid is True and v.stats["duplicate_stamps"] == 0


def test_stamp_twice_is_duplicate_stamp():
    run, s, r = setup(ACKED)
    stamp, _ = run.publish(s, "s", "room", 2.0)
    for t in (2.1, 2.2):
        run.deliver(r, stamp, None, t)
    v = check_duplicates(run.history())
    (a,) = v.anomalies
    assert a.kind == "duplicate_stamp" and a.evidence["label"] == "r"
    assert a.evidence["samples"] == [{"channel": "room", "sender": "s", "counter": 1, "count": 1, "t": 2.2}]


def test_seq_twice_is_duplicate_seq_and_stamp():
    run, s, r = setup(SOCKETPROOF)
    stamp, seq = run.publish(s, "s", "room", 2.0)
    run.deliver(r, stamp, seq, 2.1)
    run.deliver(r, stamp, seq, 2.2)
    v = check_duplicates(run.history())
    assert sorted(a.kind for a in v.anomalies) == ["duplicate_seq", "duplicate_stamp"]
    assert v.stats["duplicate_seqs"] == 1


def test_same_stamp_on_two_connections_is_fine():
    run, s, r = setup(ACKED)
    r2 = run.open("r2", channels=("room",))
    run.broadcast(s, "s", "room", [r, r2], 2.0)
    assert check_duplicates(run.history()).valid is True


def test_same_counter_of_two_senders_or_channels_is_fine():
    run, s, r = setup(ACKED)
    for stamp in (Stamp("s", "room", 1, 2.0), Stamp("x", "room", 1, 2.0), Stamp("s", "other", 1, 2.0)):
        run.deliver(r, stamp, None, 2.1)
    assert check_duplicates(run.history()).valid is True


def test_replayed_after_reconnect_counts_on_the_new_connection_only():
    run, s, r = setup(ACKED)
    stamp, _ = run.publish(s, "s", "room", 2.0)
    run.deliver(r, stamp, None, 2.1)
    r.closed(1006, "", "abrupt", 3.0)
    run.deliver(r, stamp, None, 3.5)  # replay before Ready: the new connection's first
    run.open("r", channels=("room",), t=3.6, hooks=r)
    assert check_duplicates(run.history()).valid is True
