from checks.history import ConnectionHistory, History, SeqSet
from checks.ordering import check_ordering
from checks.verdict import UNKNOWN


def conn(label, user="alice", **kw):
    kw.setdefault("opened_at", 1.0)
    kw.setdefault("open_at_end", True)
    return ConnectionHistory(label=label, user=user, **kw)


def hist(*conns, complete=True):
    return History(started_at=0.0, ended_at=10.0, complete=complete, connections=list(conns))


def clean(label="t1", **kw):
    return conn(label, received=SeqSet([[1, 4]]), last_seq=4, messages=4,
                seq_ids={1: "s:1", 2: "s:2", 3: "s:3", 4: "s:4"}, fifo={"s": 4}, **kw)


def test_empty_history_is_unknown():
    assert check_ordering(History(complete=True)).valid == UNKNOWN


def test_clean_history_passes():
    r = check_ordering(hist(clean("t1"), clean("t2")))
    assert r.valid is True
    assert r.stats["tab_seqs_compared"] == 4


def test_single_message_passes():
    c = conn("t1", received=SeqSet([[1, 1]]), last_seq=1, messages=1, seq_ids={1: "s:1"})
    assert check_ordering(hist(c)).valid is True


def test_incomplete_history_is_unknown_not_pass():
    assert check_ordering(hist(clean(), complete=False)).valid == UNKNOWN


def test_out_of_order_is_reported_with_evidence():
    c = clean(conn_id="c1")
    c.out_of_order.add({"seq": 2, "prev": 3, "t": 5.0})
    r = check_ordering(hist(c))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "out_of_order"
    assert a.evidence["user"] == "alice" and a.evidence["label"] == "t1"
    assert a.evidence["conn_id"] == "c1"
    assert a.evidence["samples"] == [{"seq": 2, "prev": 3, "t": 5.0}]


def test_out_of_order_proven_even_in_incomplete_history():
    c = clean()
    c.out_of_order.add({"seq": 2, "prev": 3, "t": 5.0})
    assert check_ordering(hist(c, complete=False)).valid is False


def test_fifo_violation():
    c = clean()
    c.fifo_violations.add({"sender": "s", "counter": 2, "prev": 3, "seq": 4, "t": 1.0})
    (a,) = check_ordering(hist(c)).anomalies
    assert a.kind == "fifo" and a.evidence["samples"][0]["sender"] == "s"


def test_malformed_message():
    c = clean()
    c.malformed.add({"msg": {"type": "message"}, "t": 1.0})
    assert [a.kind for a in check_ordering(hist(c)).anomalies] == ["malformed_message"]


def test_tabs_disagreeing_on_a_seq():
    t2 = clean("t2")
    t2.seq_ids[3] = "s:9"
    r = check_ordering(hist(clean("t1"), t2))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "tab_divergence"
    assert a.evidence["seq"] == 3
    assert [(e["label"], e["id"]) for e in a.evidence["ids"]] == [("t1", "s:3"), ("t2", "s:9")]


def test_tabs_of_different_users_are_not_compared():
    bob = clean("b1", user="bob")
    bob.seq_ids[3] = "other:1"
    assert check_ordering(hist(clean("t1"), bob)).valid is True


def test_seq_restart_after_server_forgot_user_is_not_divergence():
    old = clean("t1", open_at_end=False, closed_at=2.0, welcome_last_seq=0)
    new = conn("t2", opened_at=5.0, welcome_last_seq=0, received=SeqSet([[1, 1]]), last_seq=1,
               messages=1, seq_ids={1: "x:1"})
    assert check_ordering(hist(old, new)).valid is True
