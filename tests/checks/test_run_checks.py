import functools

import pytest

from checks import ALL_CHECKS, run_checks
from checks.verdict import UNKNOWN, compose
from client.adapter import ResumeInfo
from history import History
from tests.checks.scenario import SOCKETPROOF, Run

STATS = {"connections": 0, "users": 0, "registry_entries": 0}


def worker(process, lossy, stats):
    """Two workers: alice's tab on each; bob on w1 sends to alice, carol on w2 too."""
    run = Run(SOCKETPROOF, adapter="socketproof", process=process)
    tab = run.open(f"{process}-alice-0", "alice", ("alice",), t=0.5, heartbeat=(2.0, 1.0),
                   resume=ResumeInfo(server_last=0))
    for t in (2.0, 4.0, 6.0, 8.0):
        tab.keepalive(t)
    tab.state("snapshot", 1, {"k": 1}, None, None, 1.0)
    sender = run.open(f"{process}-s", "s", ("s",), t=0.5)
    run.rec.server_stats_before = run.rec.server_stats_after = stats
    return run, tab, sender


def scenario(lossy):
    w1, tab1, bob = worker("w1", lossy, STATS)
    w2, tab2, carol = worker("w2", lossy, None)
    w2.seqs = w1.seqs  # one server numbers alice's messages
    for n in range(3):  # each sender's messages reach both tabs (across workers)
        for run, sender in ((w1, bob), (w2, carol)):
            stamp, seq = run.publish(sender, sender.h.label, "alice", 2.0 + n)
            for tab in (tab1, tab2):
                if not (lossy and tab is tab2 and n == 1 and sender is bob):
                    tab.delivered("alice", stamp, seq, None, 2.5 + n)
    return w1.history(end=9.0), w2.history(end=9.0)


def summary(verdicts):
    return [(v.name, v.valid, sorted(a.kind for a in v.anomalies)) for v in verdicts]


@pytest.mark.parametrize("lossy", [False, True])
def test_merged_workers_judge_like_one_history(lossy):
    h1, h2 = scenario(lossy)
    merged = functools.reduce(History.merge, [History(complete=True), h1, h2])
    via_json = History.from_json(h1.to_json()).merge(History.from_json(h2.to_json()))
    assert summary(run_checks(merged)) == summary(run_checks(via_json))
    loss = run_checks(merged, ["loss"])[0]
    assert loss.valid is (False if lossy else True)
    if lossy:  # seen from the stamps and from the server's seqs
        stamps, seqs = sorted(loss.anomalies, key=lambda a: "sender" in a.evidence, reverse=True)
        assert (stamps.evidence["label"], stamps.evidence["sender"], stamps.evidence["missing"]) == (
            "w2-alice-0", "w1-s", [[2, 2]])
        assert (seqs.evidence["label"], seqs.evidence["missing"]) == ("w2-alice-0", [[3, 3]])
    # every message carried a stamp: subscriber agreement leaves them to the checks above
    agreement = run_checks(merged, ["agreement"])[0]
    assert agreement.valid == UNKNOWN and agreement.stats["reason"].startswith("every message carried a stamp")
    judged = [v for v in run_checks(merged) if v.name not in ("agreement", "recovery")]  # recovery: no disruption
    assert compose(judged).valid is (False if lossy else True)


def test_worker_alone_does_not_know_the_other_senders():
    h1, _ = scenario(False)
    loss = run_checks(h1, ["loss"])[0]
    assert loss.valid is True and loss.stats["unknown_senders"] == 1  # carol's stamps, counted


def test_run_checks_names_and_options():
    h1, h2 = scenario(False)
    whole = h1.merge(h2)
    assert [v.name for v in run_checks(whole)] == list(ALL_CHECKS)
    (hb,) = run_checks(whole, ["heartbeat"], tolerance=0.1)
    assert hb.stats["tolerance"] == 0.1
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(whole, ["nope"])
    with pytest.raises(TypeError, match="tolerance"):
        run_checks(whole, ["loss"], tolerance=0.1)


def test_everything_unknown_on_empty_history():
    assert {v.valid for v in run_checks(History(complete=True))} == {UNKNOWN}
    assert all(v.stats.get("reason") for v in run_checks(History(complete=True)))
