from checks.loss import check_loss
from checks.verdict import UNKNOWN
from client.adapter import ResumeInfo, Stamp
from history import History
from tests.checks.scenario import ACKED, PLAIN, SOCKETPROOF, Run


def room(caps=ACKED, receivers=1):
    run = Run(caps)
    sender = run.open("s", channels=("room",))
    return run, sender, [run.open(f"r{i}", channels=("room",)) for i in range(receivers)]


def test_empty_is_unknown():
    r = check_loss(History(complete=True))
    assert r.valid == UNKNOWN and r.stats["reason"] == "no stamped delivery or published message to check"


def test_clean_run_passes():
    for caps in (PLAIN, ACKED, SOCKETPROOF):
        run, s, rs = room(caps, 2)
        for n in range(5):
            run.broadcast(s, "s", "room", rs, 2.0 + n)
        v = check_loss(run.history())
        assert v.valid is True, caps
        assert v.stats["stamp_pairs_checked"] == 2 and v.stats["lost"] == 0


def test_hole_between_first_and_last_is_lost_with_evidence():
    run, s, (r,) = room()
    for n in range(5):
        run.broadcast(s, "s", "room", [r], 2.0 + n, skip={0: {2, 3}})
    r.closed(1000, "", "client", 8.0)
    v = check_loss(run.history())
    (a,) = v.anomalies
    assert a.kind == "lost"
    e = a.evidence
    assert (e["label"], e["channel"], e["sender"], e["missing"], e["missing_count"]) == ("r0", "room", "s",
                                                                                          [[2, 3]], 2)
    assert (e["first"], e["last"], e["open_at_end"], e["closed_at"]) == (1, 5, False, 8.0)
    assert e["published_first_at"] == 2.0 and e["last_arrival_at"] == 6.05


def test_tail_missing_at_a_receiver_open_at_the_end():
    run, s, (r,) = room()
    for n in range(4):
        run.broadcast(s, "s", "room", [r], 2.0 + n, skip={0: {3, 4}})
    (a,) = check_loss(run.history()).anomalies
    assert a.evidence["missing"] == [[3, 4]] and a.evidence["open_at_end"] is True


def test_tail_of_a_closed_receiver_is_not_owed():
    run, s, (r,) = room()
    run.broadcast(s, "s", "room", [r], 2.0)
    r.closed(1000, "", "client", 2.5)
    run.broadcast(s, "s", "room", [], 3.0)
    assert check_loss(run.history()).valid is True


def test_receiver_that_got_nothing():
    run, s, (early,) = room()
    late = run.open("late", channels=("room",), t=3.0)
    for n in range(3):
        run.publish(s, "s", "room", 2.0 + n)
    v = check_loss(run.history())
    (a,) = v.anomalies  # subscribed before the first publish: owed all; `late` joined after: not judged
    assert a.evidence["label"] == "r0" and a.evidence["missing"] == [[1, 3]]
    assert late is not None


def test_refused_and_unacknowledged_publishes_are_not_owed():
    run, s, (r,) = room(ACKED)
    run.broadcast(s, "s", "room", [r], 2.0)
    run.publish(s, "s", "room", 2.1, fail="rate_limited")
    run.publish(s, "s", "room", 2.2, ack=False)  # timed out: maybe delivered, maybe not
    run.broadcast(s, "s", "room", [r], 2.3)
    assert check_loss(run.history()).valid is True
    run, s, (r,) = room(PLAIN)  # without PUBLISH_ACK a publish without a refusal is owed
    run.broadcast(s, "s", "room", [r], 2.0)
    run.publish(s, "s", "room", 2.1, fail="closed")
    run.publish(s, "s", "room", 2.2, ack=False)
    run.broadcast(s, "s", "room", [r], 2.3)
    (a,) = check_loss(run.history()).anomalies
    assert a.evidence["missing"] == [[3, 3]]


def test_a_sender_is_not_owed_its_own_tail():
    run, s, _ = room(receivers=0)
    run.broadcast(s, "s", "room", [s], 2.0)
    run.publish(s, "s", "room", 2.1)
    assert check_loss(run.history()).valid is True


def test_stamps_of_an_unknown_sender_are_counted_not_judged():
    run, s, (r,) = room()
    run.broadcast(s, "s", "room", [r], 2.0)
    run.deliver(r, Stamp("ghost", "room", 7, 1.0), None, 2.5)
    v = check_loss(run.history())
    assert v.valid is True and v.stats["unknown_senders"] == 1


def test_incomplete_without_proof_is_unknown_and_holes_still_fail():
    run, s, (r,) = room()
    run.broadcast(s, "s", "room", [r], 2.0)
    assert check_loss(run.history(complete=False)).valid == UNKNOWN
    run, s, (r,) = room()
    for n in range(3):
        run.broadcast(s, "s", "room", [r], 2.0 + n, skip={0: {2}})
    assert check_loss(run.history(complete=False)).valid is False


def test_truncated_stream_is_unknown():
    run, s, (r,) = room()
    for n in range(600):
        stamp, _ = run.publish(s, "s", "room", 2.0)
        if n % 2 == 0:
            run.deliver(r, stamp, None, 2.1)
    v = check_loss(run.history())
    assert v.valid is False  # the holes it did record are proof
    run, s, (r,) = room()
    for _ in range(1100):  # every arrival twice: no hole, but runs overflow
        stamp, _ = run.publish(s, "s", "room", 2.0)
        run.deliver(r, stamp, None, 2.1)
        run.deliver(r, stamp, None, 2.1)
    v = check_loss(run.history())
    assert v.valid == UNKNOWN and "cap of arrival runs" in v.stats["reason"]


# -- server seqs with resume (the socketproof protocol) -----------------------------

def user(run, label, t=1.0, requested=None, last=0, replay=0, gap=None):
    return run.open(label, "bob", ("bob",), t=t,
                    resume=ResumeInfo(requested=requested, server_last=last, replay=replay, gap=gap))


def test_seq_holes_at_an_open_tab():
    run = Run(SOCKETPROOF)
    s = run.open("s", channels=("s",))
    tab = user(run, "t1")
    sent = [run.publish(s, "s", "bob", 2.0 + n) for n in range(5)]
    for stamp, seq in sent[:2] + sent[3:4]:
        run.deliver(tab, stamp, seq, 3.0)
    v = check_loss(run.history())
    by = {(a.evidence.get("sender"), tuple(map(tuple, a.evidence["missing"]))) for a in v.anomalies}
    assert by == {("s", ((3, 3), (5, 5))), (None, ((3, 3), (5, 5)))}  # stamps and seqs agree
    assert v.stats["lost_seqs"] == 2 and v.stats["lost_stamps"] == 2
    assert v.stats["lost"] == 2  # the same two messages, seen twice: not four losses


def test_resumed_tab_owes_after_its_offset_and_announced_gap_is_not_loss():
    run = Run(SOCKETPROOF)
    s = run.open("s", channels=("s",))
    sent = [run.publish(s, "s", "bob", 1.0 + n * 0.1) for n in range(10)]  # nobody connected yet
    tab = user(run, "t2", t=2.0, requested=3, last=10, gap=(4, 8))
    for stamp, seq in sent[8:]:
        run.deliver(tab, stamp, seq, 2.1)
    v = check_loss(run.history())
    assert v.valid is True and v.stats["announced"] == 5


def test_closed_tab_with_seq_hole_is_loss_even_if_incomplete():
    run = Run(SOCKETPROOF - {"publish_ack"})
    tab = user(run, "t1")
    for seq in (1, 2, 5, 6):
        tab.delivered("bob", None, seq, None, 2.0)
    tab.closed(1000, "", "client", 3.0)
    v = check_loss(run.history(complete=False))
    assert v.valid is False and v.anomalies[0].evidence["missing"] == [[3, 4]]


def test_seq_restart_is_unknown_with_reason():
    run = Run(SOCKETPROOF)
    s = run.open("s", channels=("s",))
    old = user(run, "t1")
    for n in range(9):
        run.broadcast(s, "s", "bob", [old], 1.5 + n * 0.01)
    old.closed(1006, "", "abrupt", 2.0)
    run.seqs["bob"] = 0  # the server forgot bob
    new = user(run, "t2", t=5.0, last=0)
    run.broadcast(s, "s", "bob", [new], 5.5)
    v = check_loss(run.history())
    assert v.valid == UNKNOWN and v.stats["seq_reset_channels"] == ["bob"]
    assert "forgot 1 channel(s)" in v.stats["reason"]


def test_acks_for_a_channel_nobody_received_is_unknown():
    run = Run(SOCKETPROOF)
    s = run.open("s", channels=("s",))
    tab = user(run, "t1")
    run.broadcast(s, "s", "bob", [tab], 2.0)
    run.publish(s, "s", "carol", 2.1)
    v = check_loss(run.history())
    assert v.valid == UNKNOWN and v.stats["channels_without_connections"] == ["carol"]
