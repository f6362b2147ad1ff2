import pytest

from checks.timing import Threshold, check_timing, parse_threshold
from checks.verdict import UNKNOWN

STATS = {
    "echo": {"num_requests": 100, "num_failures": 0, "percentiles": {50: 5, 95: 30, 99: 80},
             "avg": 10.0, "min": 1, "max": 90, "rps": 50.0},
    "connect": {"num_requests": 10, "num_failures": 1, "percentiles": {"50": 20, "99": 150},
                "avg": 25.0, "rps": 1.0},
    "idle": {"num_requests": 0, "num_failures": 0, "percentiles": {}, "avg": 0, "rps": 0},
    "Aggregated": {"num_requests": 110, "num_failures": 1, "percentiles": {95: 40},
                   "avg": 11.0, "rps": 51.0},
}


def test_parse_examples():
    assert parse_threshold("echo:p95<50") == Threshold("echo:p95<50", "echo", "p95", "<", 50.0, 95.0)
    assert parse_threshold("connect:p99<200").percentile == 99.0
    t = parse_threshold("failures<0.1%")
    assert (t.name, t.metric, t.limit) == ("Aggregated", "failures", pytest.approx(0.001))
    assert parse_threshold("echo:avg<20").metric == "avg"
    assert parse_threshold("rps>100").op == ">"
    assert parse_threshold(" ws:connect : p99.9 <= 3 ").name == "ws:connect"
    assert parse_threshold("failures<0.01").limit == 0.01


@pytest.mark.parametrize("expr, message", [
    ("echo:p95", "expected"), ("echo p95 < 5", "expected"), ("echo:p95<abc", "expected"),
    ("echo:p95=5", "expected"), ("echo:foo<5", "unknown metric 'foo'"),
    ("echo:p0<5", "percentile"), ("echo:p95<5%", "'%' only applies"), ("", "expected"),
])
def test_parse_errors_say_what_is_wrong(expr, message):
    with pytest.raises(ValueError, match=message):
        parse_threshold(expr)


def test_all_hold():
    r = check_timing(STATS, ["echo:p95<50", "connect:p99<200", "echo:avg<20", "rps>50",
                             "failures<1%", "connect:p50<=20"])
    assert r.valid is True
    assert r.stats["thresholds"]["rps>50"]["actual"] == 51.0


def test_broken_threshold_has_evidence():
    r = check_timing(STATS, ["echo:p99<50", "connect:failures<5%"])
    assert r.valid is False
    by = {a.evidence["threshold"]: a.evidence for a in r.anomalies}
    assert by["echo:p99<50"]["actual"] == 80 and by["echo:p99<50"]["limit"] == 50
    assert by["connect:failures<5%"]["actual"] == pytest.approx(0.1)


def test_no_samples_is_unknown():
    assert check_timing(STATS, ["idle:p95<10"]).valid == UNKNOWN
    assert check_timing(STATS, ["missing:p95<10"]).valid == UNKNOWN
    assert check_timing(STATS, ["connect:p95<10"]).valid == UNKNOWN  # no p95 recorded
    assert check_timing(STATS, []).valid == UNKNOWN
    assert check_timing({}, ["rps>1"]).valid == UNKNOWN


def test_failure_beats_unknown():
    assert check_timing(STATS, ["idle:p95<10", "echo:p99<50"]).valid is False


def test_fractional_percentile_keys():
    stats = {"Aggregated": {"num_requests": 1, "percentiles": {"0.95": 12}}}
    assert check_timing(stats, ["p95<13"]).valid is True
