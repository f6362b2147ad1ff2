from checks.loss import check_loss
from checks.ordering import check_ordering
from checks.verdict import UNKNOWN
from client.adapter import ResumeInfo
from history import History
from tests.checks.scenario import PLAIN, SOCKETPROOF, Run


def two_tabs(caps=SOCKETPROOF):
    run = Run(caps)
    sender = run.open("s", channels=("s",))
    tabs = [run.open(f"t{i}", "bob", ("bob",)) for i in range(2)]
    return run, sender, tabs


def test_empty_is_unknown():
    r = check_ordering(History(complete=True))
    assert r.valid == UNKNOWN and r.stats["reason"] == "no stamped delivery was recorded"


def test_clean_stamps_pass_without_server_seqs():
    run, sender, tabs = two_tabs(PLAIN)
    for n in range(5):
        run.broadcast(sender, "s", "bob", tabs, 2.0 + n)
    r = check_ordering(run.history())
    assert r.valid is True and r.stats["sender_streams"] == 2
    assert r.stats["seq_order"] == "not judged: the custom adapter has no server sequence numbers"


def test_late_stamp_is_fifo_with_evidence():
    run, sender, (tab, _) = two_tabs(PLAIN)
    stamps = [run.publish(sender, "s", "bob", 2.0 + n)[0] for n in range(4)]
    for stamp, t in zip((stamps[0], stamps[2], stamps[1], stamps[3]), (3.0, 3.1, 3.2, 3.3), strict=True):
        run.deliver(tab, stamp, None, t)
    r = check_ordering(run.history())
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "fifo" and a.evidence["label"] == "t0" and a.evidence["count"] == 1
    assert a.evidence["samples"] == [{"channel": "bob", "sender": "s", "counter": 2, "late": 1, "after": 3,
                                      "t": 3.2}]


def test_seq_below_one_seen_is_out_of_order():
    run, sender, (tab, _) = two_tabs()
    sent = [run.publish(sender, "s", "bob", 2.0 + n) for n in range(3)]
    for (stamp, seq), t in zip((sent[1], sent[0], sent[2]), (3.0, 3.1, 3.2), strict=True):
        run.deliver(tab, stamp, seq, t)
    kinds = {a.kind: a for a in check_ordering(run.history()).anomalies}
    assert set(kinds) == {"out_of_order", "fifo"}
    assert kinds["out_of_order"].evidence["samples"][0] == {"channel": "bob", "seq": 1, "late": 1, "after": 2,
                                                            "t": 3.1}


def test_duplicate_is_not_a_reorder():
    run, sender, (tab, _) = two_tabs()
    stamp, seq = run.publish(sender, "s", "bob", 2.0)
    run.deliver(tab, stamp, seq, 2.1)
    run.deliver(tab, stamp, seq, 2.2)
    assert check_ordering(run.history()).valid is True


def test_tabs_disagreeing_on_a_seq_diverge():
    run, sender, tabs = two_tabs()
    a, seq_a = run.publish(sender, "s", "bob", 2.0)
    b, _ = run.publish(sender, "s", "bob", 2.1)
    run.deliver(tabs[0], a, seq_a, 2.5)
    run.deliver(tabs[1], b, seq_a, 2.5)  # the other tab got b under a's seq
    r = check_ordering(run.history())
    (d,) = [x for x in r.anomalies if x.kind == "tab_divergence"]
    assert d.evidence["seq"] == 1 and [i["id"] for i in d.evidence["ids"]] == ["s:1", "s:2"]


def test_a_restart_whose_seqs_ran_past_the_old_ones_is_a_new_era_not_a_divergence():
    """The server forgot bob while he was away and, before he came back, queued more for him
    than he had got before: his new connection's seqs 1-3 are other messages. Not two tabs
    disagreeing (none was live at once) but a reset, which the loss check reports."""
    run = Run(SOCKETPROOF)
    sender = run.open("s", channels=("s",))
    old = run.open("t1", "bob", ("bob",), resume=ResumeInfo(requested=None, server_last=0, replay=0, gap=None))
    for n in range(3):
        run.broadcast(sender, "s", "bob", [old], 1.5 + n * 0.01)
    old.closed(1001, "", "server", 2.0)
    sender.closed(1001, "", "server", 2.0)
    run.seqs["bob"] = 0  # the restarted server knows nothing of bob
    again = run.open("s2", "s", ("s",), t=3.0)
    queued = [run.publish(again, "s", "bob", 3.5 + n * 0.01) for n in range(5)]
    new = run.open("t2", "bob", ("bob",), t=5.0, resume=ResumeInfo(requested=None, server_last=5, replay=5, gap=None))
    for stamp, seq in queued:
        run.deliver(new, stamp, seq, 5.1)
    history = run.history()
    assert check_ordering(history).valid is True
    loss = check_loss(history)
    assert loss.valid == UNKNOWN and loss.stats["seq_reset_channels"] == ["bob"]


def test_incomplete_is_unknown_but_proof_still_fails():
    run, sender, (tab, _) = two_tabs(PLAIN)
    run.deliver(tab, run.publish(sender, "s", "bob", 2.0)[0], None, 2.1)
    assert check_ordering(run.history(complete=False)).valid == UNKNOWN
    run, sender, (tab, _) = two_tabs(PLAIN)
    s1, s2 = run.publish(sender, "s", "bob", 2.0)[0], run.publish(sender, "s", "bob", 2.1)[0]
    run.deliver(tab, s2, None, 2.2)
    run.deliver(tab, s1, None, 2.3)
    assert check_ordering(run.history(complete=False)).valid is False


def test_only_unstamped_deliveries_is_unknown():
    run, _, (tab, _) = two_tabs(PLAIN)
    tab.delivered("bob", None, None, None, 2.0)
    r = check_ordering(run.history())
    assert r.valid == UNKNOWN and "carried no stamp" in r.stats["reason"]
