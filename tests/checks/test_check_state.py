from checks.history import ConnectionHistory, History, state_digest
from checks.state import check_state
from checks.verdict import UNKNOWN

D1 = state_digest({"a": 1})


def tab(label, version=3, digest=D1, user="alice", **kw):
    kw.setdefault("open_at_end", True)
    return ConnectionHistory(label=label, user=user, conn_id=label, opened_at=1.0,
                             version=version, state_digest=digest, **kw)


def hist(*conns, complete=True):
    return History(started_at=0.0, ended_at=10.0, complete=complete, connections=list(conns))


def test_empty_or_stateless_is_unknown():
    assert check_state(History(complete=True)).valid == UNKNOWN
    assert check_state(hist(ConnectionHistory(label="t", user="u"))).valid == UNKNOWN


def test_single_tab_passes():
    assert check_state(hist(tab("t1"))).valid is True


def test_agreeing_tabs_pass():
    r = check_state(hist(tab("t1"), tab("t2"), tab("b1", user="bob", version=9, digest="x")))
    assert r.valid is True and r.stats["users_compared"] == 1


def test_incomplete_is_unknown():
    assert check_state(hist(tab("t1"), complete=False)).valid == UNKNOWN


def test_version_anomaly_is_reported():
    c = tab("t1")
    c.version_anomalies.add({"kind": "patch_version", "version": 5, "expected": 4, "t": 2.0})
    r = check_state(hist(c))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "version" and "patch_version" in a.message
    assert a.evidence["samples"][0]["expected"] == 4 and a.evidence["label"] == "t1"


def test_diverging_tabs():
    r = check_state(hist(tab("t1"), tab("t2", digest=state_digest({"a": 2}))))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "divergence" and a.evidence["user"] == "alice"
    assert {t["label"] for t in a.evidence["tabs"]} == {"t1", "t2"}


def test_different_versions_diverge_but_closed_tabs_are_ignored():
    assert check_state(hist(tab("t1"), tab("t2", version=2))).valid is False
    assert check_state(hist(tab("t1"), tab("t2", version=2, open_at_end=False,
                                          closed_at=3.0))).valid is True
