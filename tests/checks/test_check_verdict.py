from checks.verdict import MAX_ANOMALIES, UNKNOWN, Anomaly, Verdict, compose, verdict


def v(name, valid):
    return Verdict(name, valid, [Anomaly("k", name)] if valid is False else [], {"n": 1})


def test_compose_false_wins():
    c = compose([v("a", True), v("b", UNKNOWN), v("c", False)])
    assert c.valid is False
    assert [a.message for a in c.anomalies] == ["c"]
    assert c.stats["b"]["valid"] == UNKNOWN


def test_compose_unknown_over_true():
    assert compose([v("a", True), v("b", UNKNOWN)]).valid == UNKNOWN


def test_compose_all_true():
    assert compose([v("a", True), v("b", True)]).valid is True


def test_compose_nothing_is_unknown():
    assert compose([]).valid == UNKNOWN


def test_verdict_caps_anomalies_and_counts_them():
    anomalies = [Anomaly("k", str(i)) for i in range(MAX_ANOMALIES + 3)]
    r = verdict("x", anomalies, {}, known=True)
    assert r.valid is False and len(r.anomalies) == MAX_ANOMALIES
    assert r.stats["anomalies"] == MAX_ANOMALIES + 3
    assert verdict("x", [], {}, known=False).valid == UNKNOWN
    assert verdict("x", [], {}, known=True).ok


def test_verdict_round_trip():
    r = Verdict("x", False, [Anomaly("k", "m", {"seq": 1})], {"a": 1})
    assert Verdict.from_dict(r.to_dict()) == r
