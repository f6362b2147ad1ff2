from checks.history import ConnectionHistory, History, SeqSet
from checks.loss import check_loss
from checks.verdict import UNKNOWN


def conn(label, received, user="alice", expect_from=1, **kw):
    rs = SeqSet(received)
    kw.setdefault("opened_at", 1.0)
    kw.setdefault("welcome_last_seq", expect_from - 1)
    return ConnectionHistory(label=label, user=user, conn_id=label.upper(), received=rs,
                             last_seq=rs.last, messages=rs.count(), expect_from=expect_from, **kw)


def hist(*conns, acks=None, complete=True):
    return History(started_at=0.0, ended_at=10.0, complete=complete, connections=list(conns),
                   acks={u: SeqSet(r) for u, r in (acks or {}).items()})


def test_empty_is_unknown():
    assert check_loss(History(complete=True)).valid == UNKNOWN


def test_clean_open_tab_passes():
    r = check_loss(hist(conn("t1", [[1, 5]], open_at_end=True), acks={"alice": [[1, 5]]}))
    assert r.valid is True
    assert r.stats["lost"] == 0 and r.stats["acked"] == 5


def test_single_message():
    assert check_loss(hist(conn("t1", [[1, 1]], open_at_end=True),
                           acks={"alice": [[1, 1]]})).valid is True


def test_open_tab_missing_acked_seqs_is_loss():
    c = conn("t1", [[1, 2], [4, 5]], open_at_end=True)
    r = check_loss(hist(c, acks={"alice": [[1, 7]]}))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "lost"
    assert a.evidence["user"] == "alice" and a.evidence["label"] == "t1"
    assert a.evidence["conn_id"] == "T1"
    assert a.evidence["missing"] == [[3, 3], [6, 7]]
    assert a.evidence["missing_count"] == 3
    assert r.stats["lost"] == 3


def test_resumed_tab_only_owes_seqs_after_its_resume_point():
    c = conn("t2", [[6, 8]], expect_from=6, requested_last_seq=5, welcome_last_seq=8,
             open_at_end=True)
    assert check_loss(hist(c, acks={"alice": [[1, 8]]})).valid is True


def test_announced_gap_is_not_loss():
    c = conn("t2", [[9, 10]], expect_from=4, requested_last_seq=3, welcome_last_seq=10,
             gap=[4, 8], open_at_end=True)
    r = check_loss(hist(c, acks={"alice": [[1, 10]]}))
    assert r.valid is True
    assert r.stats["announced"] == 5


def test_closed_tab_with_hole_is_loss_even_if_incomplete():
    c = conn("t1", [[1, 2], [5, 6]], closed_at=5.0, close_initiator="client")
    r = check_loss(hist(c, acks={"alice": [[1, 6]]}, complete=False))
    assert r.valid is False
    assert r.anomalies[0].evidence["missing"] == [[3, 4]]
    assert r.anomalies[0].evidence["open_at_end"] is False


def test_closed_tab_without_holes_is_fine_and_rest_is_undelivered():
    c = conn("t1", [[1, 3]], closed_at=5.0, close_initiator="client")
    r = check_loss(hist(c, acks={"alice": [[1, 3], [5, 6]]}))
    assert r.valid is True
    assert r.stats["undelivered_at_end"] == 2


def test_undelivered_not_counted_when_a_tab_is_open():
    closed = conn("t1", [[1, 3]], closed_at=5.0)
    opened = conn("t2", [[1, 6]], opened_at=4.0, open_at_end=True)
    r = check_loss(hist(closed, opened, acks={"alice": [[1, 6]]}))
    assert r.valid is True and r.stats["undelivered_at_end"] == 0


def test_incomplete_without_proof_is_unknown():
    c = conn("t1", [[1, 3]], open_at_end=True)
    assert check_loss(hist(c, acks={"alice": [[1, 3]]}, complete=False)).valid == UNKNOWN


def test_acks_for_user_without_connections_is_unknown():
    c = conn("t1", [[1, 3]], open_at_end=True)
    r = check_loss(hist(c, acks={"alice": [[1, 3]], "bob": [[1, 2]]}))
    assert r.valid == UNKNOWN
    assert r.stats["users_without_connections"] == ["bob"]


def test_seq_restart_makes_acks_ambiguous():
    old = conn("t1", [[1, 9]], closed_at=2.0, welcome_last_seq=0)
    new = conn("t2", [[1, 2]], opened_at=5.0, welcome_last_seq=0, open_at_end=True)
    r = check_loss(hist(old, new, acks={"alice": [[1, 9]]}))
    assert r.valid == UNKNOWN
    assert r.stats["seq_reset_users"] == ["alice"]


def test_connection_without_welcome_is_not_checked():
    c = ConnectionHistory(label="t1", user="alice", open_at_end=True)
    assert check_loss(hist(c, acks={"alice": [[1, 1]]})).valid == UNKNOWN


def test_seqs_above_acks_must_be_contiguous_too():
    c = conn("t1", [[1, 2], [9, 9]], open_at_end=True)
    r = check_loss(hist(c, acks={"alice": [[1, 2]]}))
    assert r.anomalies[0].evidence["missing"] == [[3, 8]]
