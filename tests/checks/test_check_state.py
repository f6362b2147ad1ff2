from checks.state import check_state
from checks.verdict import UNKNOWN
from history import History
from tests.checks.scenario import ACKED, SOCKETPROOF, Run


def tab(run, label, user="alice"):
    return run.open(label, user, (user,))


def test_empty_is_unknown():
    assert check_state(History(complete=True, capabilities=SOCKETPROOF)).valid == UNKNOWN


def test_without_versioned_state_is_unknown_naming_the_adapter():
    run = Run(ACKED, adapter="socketio")
    tab(run, "t1").state("snapshot", 0, {}, None, None, 1.0)
    r = check_state(run.history())
    assert r.valid == UNKNOWN and r.stats["reason"] == "the socketio adapter has no versioned state"
    r = check_state(History(complete=True))
    assert r.stats["reason"] == "the history does not say whether its adapter has versioned state"


def test_clean_sync_and_agreeing_tabs_pass():
    run = Run(SOCKETPROOF)
    tabs = [tab(run, f"t{i}") for i in range(2)]
    for t in tabs:
        t.state("snapshot", 2, {"a": 1}, None, None, 1.0)
    tabs[0].update_sent("u1", {"b": 2}, 2.0)
    tabs[0].state("ack", 3, None, None, "u1", 2.1)
    tabs[1].state("patch", 3, None, {"b": 2}, None, 2.2)
    tabs[1].state("snapshot", 3, {"a": 1, "b": 2}, None, None, 3.0)
    r = check_state(run.history())
    assert r.valid is True and r.stats["users_compared"] == 1


def test_each_version_anomaly_kind():
    run = Run(SOCKETPROOF)
    c = tab(run, "t1")
    c.state("patch", 1, None, {"x": 1}, None, 1.0)
    c.state("snapshot", 5, {"a": 1}, None, None, 2.0)
    c.state("patch", 7, None, {"b": 1}, None, 3.0)
    c.state("snapshot", 6, {}, None, None, 4.0)
    c.state("snapshot", 6, {"stale": True}, None, None, 5.0)
    c.update_sent("u", {}, 6.0)
    c.state("ack", 9, None, None, "u", 6.5)
    (a,) = check_state(run.history()).anomalies
    assert a.kind == "version" and a.evidence["label"] == "t1"
    assert [(s["kind"], s["t"]) for s in a.evidence["samples"]] == [
        ("patch_before_snapshot", 1.0), ("patch_version", 3.0), ("snapshot_backwards", 4.0),
        ("snapshot_mismatch", 5.0), ("ack_version", 6.5)]


def test_tabs_ending_apart_diverge():
    run = Run(SOCKETPROOF)
    a, b = tab(run, "t1"), tab(run, "t2")
    a.state("snapshot", 1, {"k": 1}, None, None, 1.0)
    b.state("snapshot", 1, {"k": 1}, None, None, 1.0)
    a.state("patch", 2, None, {"k": 2}, None, 2.0)
    kinds = [x.kind for x in check_state(run.history()).anomalies]
    assert kinds == ["divergence"]


def test_unmatched_ack_is_counted_not_applied():
    run = Run(SOCKETPROOF)
    c = tab(run, "t1")
    c.state("snapshot", 1, {}, None, None, 1.0)
    c.state("ack", 2, None, None, "nobody", 2.0)
    h = run.history()
    assert h.connections[0].unmatched_acks == 1 and h.connections[0].version == 1
    assert check_state(h).valid is True
