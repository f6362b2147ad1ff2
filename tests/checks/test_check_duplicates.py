from checks.duplicates import check_duplicates
from checks.history import ConnectionHistory, History, SeqSet
from checks.verdict import UNKNOWN


def clean(label="t1"):
    return ConnectionHistory(label=label, user="alice", conn_id="c1", opened_at=1.0,
                             open_at_end=True, received=SeqSet([[1, 3]]), last_seq=3, messages=3)


def hist(*conns, complete=True):
    return History(started_at=0.0, ended_at=10.0, complete=complete, connections=list(conns))


def test_empty_is_unknown():
    assert check_duplicates(History(complete=True)).valid == UNKNOWN
    assert check_duplicates(hist(ConnectionHistory(label="t", user="u"))).valid == UNKNOWN


def test_clean_passes():
    assert check_duplicates(hist(clean())).valid is True


def test_incomplete_is_unknown():
    assert check_duplicates(hist(clean(), complete=False)).valid == UNKNOWN


def test_duplicate_seq():
    c = clean()
    c.duplicates.add({"seq": 2, "id": "s:2", "t": 4.0})
    r = check_duplicates(hist(c))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "duplicate_seq"
    assert a.evidence["label"] == "t1" and a.evidence["conn_id"] == "c1"
    assert a.evidence["samples"] == [{"seq": 2, "id": "s:2", "t": 4.0}]
    assert r.stats["duplicate_seqs"] == 1


def test_duplicate_id():
    c = clean()
    c.duplicate_ids.add({"seq": 3, "id": "s:2", "t": 4.0})
    (a,) = check_duplicates(hist(c)).anomalies
    assert a.kind == "duplicate_id" and a.evidence["samples"][0]["id"] == "s:2"
