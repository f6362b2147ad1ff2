"""Folding closed connections keeps the evidence the checks need, also across workers."""
from checks import run_checks
from client.adapter import ResumeInfo, Stamp
from history import History
from history.folded import FOLD_HEARTBEAT
from tests.checks.scenario import ACKED, SOCKETPROOF, Run


def worker(process, lossy_at=None, keep=1):
    run = Run(ACKED, process=process, keep_closed=keep)
    s = run.open(f"{process}-s")
    for i in range(4):
        r = run.open(f"{process}-r{i}", channels=("room",), t=1.0 + i)
        for n in range(3):
            skip = {0: {3 * i + 2}} if i == lossy_at else None
            run.broadcast(s, f"{process}-s", "room", [r], 1.1 + i + n * 0.1, skip=skip)
        r.closed(1000, "", "client", 1.9 + i)
    return run.history(end=9.0)


def test_folded_holes_are_judged_against_the_whole_run():
    clean = worker("w1").merge(worker("w2"))
    assert clean.folded.connections == 6 and clean.folded.by_process == {"w1": 3, "w2": 3}
    assert run_checks(clean, ["loss"])[0].valid is True
    lossy = worker("w1", lossy_at=0).merge(worker("w2"))
    (a,) = run_checks(lossy, ["loss"])[0].anomalies
    assert a.evidence["folded"] and a.evidence["sender"] == "w1-s" and a.evidence["missing"] == [[2, 2]]
    assert a.evidence["receivers"][0]["label"] == "w1-r0"
    back = History.from_json(lossy.to_json())
    assert back.folded == lossy.folded


def test_a_refused_publish_is_not_a_folded_loss():
    run = Run(ACKED, keep_closed=0)
    s = run.open("s")
    r = run.open("r", channels=("room",))
    run.broadcast(s, "s", "room", [r], 1.0)
    run.publish(s, "s", "room", 1.1, fail="rate_limited")
    run.broadcast(s, "s", "room", [r], 1.2)
    r.closed(1000, "", "client", 2.0)
    h = run.history()
    assert h.folded.holes["s"]["room"].ranges() == [[2, 2]]  # recorded as a hole ...
    assert run_checks(h, ["loss"])[0].valid is True  # ... and judged not owed


def test_folded_seq_holes_order_and_state_are_kept_as_findings():
    run = Run(SOCKETPROOF, keep_closed=0)
    c = run.open("t", "bob", ("bob",), resume=ResumeInfo(server_last=0))
    for seq in (1, 3, 2, 2, 6):
        c.delivered("bob", Stamp("x", "bob", seq, 0.0), seq, None, 1.0 + seq)
    c.state("patch", 4, None, {}, None, 2.0)
    c.closed(1000, "", "client", 9.0)
    h = run.history()
    assert not h.connections
    assert set(h.folded.findings) == {"fifo", "out_of_order", "duplicate_seq", "duplicate_stamp", "lost", "version"}
    kinds = {v.name: sorted(a.kind for a in v.anomalies) for v in run_checks(h, ["ordering", "duplicates", "state"])}
    assert kinds == {"ordering": ["fifo", "out_of_order"], "duplicates": ["duplicate_seq", "duplicate_stamp"],
                     "state": ["version"]}
    (lost,) = [a for a in run_checks(h, ["loss"])[0].anomalies if a.evidence.get("count")]
    assert lost.evidence["samples"][0]["missing"] == [[4, 5]]


def test_folded_heartbeat_keeps_the_most_irregular():
    run = Run(SOCKETPROOF, keep_closed=0)
    for i in range(FOLD_HEARTBEAT + 5):
        c = run.open(f"t{i}", t=0.0, heartbeat=(1.0, 1.0))
        pings = (1.0, 2.0, 3.0, 4.0) if i != 7 else (1.0, 4.0)
        for t in pings:
            c.keepalive(t)
        c.closed(1000, "", "client", 4.5)
    h = run.history()
    assert len(h.folded.heartbeat) == FOLD_HEARTBEAT
    found = {(a.kind, a.evidence["label"]) for a in run_checks(h, ["heartbeat"])[0].anomalies}
    assert found == {("interval_max", "t7"), ("interval_mean", "t7")}
