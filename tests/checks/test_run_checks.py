import functools

import pytest

from checks import ALL_CHECKS, History, SeqSet, run_checks
from checks.history import ConnectionHistory, state_digest
from checks.verdict import UNKNOWN, compose


def conn(label, user, process, received, **kw):
    rs = SeqSet(received)
    c = ConnectionHistory(label=label, user=user, process=process, conn_id=label,
                          opened_at=0.5, expect_from=1, welcome_last_seq=0, received=rs,
                          last_seq=rs.last, messages=rs.count(), version=2,
                          state_digest=state_digest({"k": 1}), heartbeat_interval=2.0,
                          pings=4, first_ping_at=2.0, last_ping_at=8.0, ping_interval_min=2.0,
                          ping_interval_max=2.0, ping_interval_sum=6.0,
                          seq_ids={s: f"{label}:{s}" for s in range(rs.first or 1, (rs.last or 0) + 1)},
                          **kw)
    return c


def worker(process, conns, acks, **kw):
    return History(started_at=0.0, ended_at=9.0, complete=True, connections=conns,
                   acks={u: SeqSet(r) for u, r in acks.items()}, **kw)


STATS = {"connections": 0, "users": 0, "registry_entries": 0}


def scenario(lossy: bool):
    """Alice has a tab on each worker; bob on worker 2 only. Acks come from both."""
    a1 = conn("w1-alice-0", "alice", "w1", [[1, 6]], open_at_end=True)
    a2 = conn("w2-alice-0", "alice", "w2", [[1, 3], [5, 6]] if lossy else [[1, 6]],
              open_at_end=True)
    a2.seq_ids = dict(a1.seq_ids)
    b = conn("w2-bob-0", "bob", "w2", [[1, 2]], open_at_end=True)
    w1 = worker("w1", [a1], {"alice": [[1, 3]], "bob": [[1, 2]]}, server_stats_before=STATS)
    w2 = worker("w2", [a2, b], {"alice": [[4, 6]]}, server_stats_after=STATS)
    whole = worker("one", [a1, a2, b], {"alice": [[1, 6]], "bob": [[1, 2]]},
                   server_stats_before=STATS, server_stats_after=STATS)
    return w1, w2, whole


def summary(verdicts):
    return [(v.name, v.valid, sorted(a.kind for a in v.anomalies)) for v in verdicts]


@pytest.mark.parametrize("lossy", [False, True])
def test_merged_workers_judge_like_one_history(lossy):
    w1, w2, whole = scenario(lossy)
    merged = functools.reduce(History.merge, [w1, w2])
    assert summary(run_checks(merged)) == summary(run_checks(whole))
    via_json = History.from_json(w1.to_json()).merge(History.from_json(w2.to_json()))
    assert summary(run_checks(via_json)) == summary(run_checks(whole))
    assert compose(run_checks(merged)).valid is (False if lossy else True)


def test_worker_alone_lacks_evidence():
    w1, _, _ = scenario(False)
    assert run_checks(w1, ["loss"])[0].valid == UNKNOWN  # acks for bob, no bob connection


def test_run_checks_names_and_options():
    _, _, whole = scenario(False)
    assert [v.name for v in run_checks(whole)] == list(ALL_CHECKS)
    (hb,) = run_checks(whole, ["heartbeat"], tolerance=0.1)
    assert hb.stats["tolerance"] == 0.1
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(whole, ["nope"])
    with pytest.raises(TypeError, match="tolerance"):
        run_checks(whole, ["loss"], tolerance=0.1)


def test_everything_unknown_on_empty_history():
    assert {v.valid for v in run_checks(History(complete=True))} == {UNKNOWN}
