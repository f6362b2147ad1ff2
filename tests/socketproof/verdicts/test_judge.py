"""socketproof.verdicts.judge: option parsing, verdict rows, the console table, and Locust stats -> timing."""

from __future__ import annotations

import pytest
from locust.stats import RequestStats

from checks import UNKNOWN, Anomaly, Verdict, check_timing, compose
from history import History, PublishRecord
from socketproof.verdicts.judge import (
    CHECK_NAMES,
    Judgement,
    _blame_missing,
    format_table,
    judge,
    parse_check_names,
    rows,
    stats_table,
    validate_thresholds,
)


def judgement(*verdicts: Verdict, strict: bool = False) -> Judgement:
    return Judgement(list(verdicts), compose(verdicts), strict)


PASS = Verdict("ordering", True, [], {"anomalies": 0})
FAIL = Verdict("loss", False, [Anomaly("lost", "u1 is missing 2 seq(s)", {"user": "u1"})], {"anomalies": 7})
UNSURE = Verdict("heartbeat", UNKNOWN, [], {"anomalies": 0, "reason": "no server pings seen"})


# -- --checks and --threshold --------------------------------------------------


@pytest.mark.parametrize("text", [None, "all", "", " all ", ","])
def test_all_checks_by_default(text: str | None) -> None:
    assert parse_check_names(text) == CHECK_NAMES
    assert set(CHECK_NAMES) == {"ordering", "duplicates", "loss", "agreement", "cleanup", "heartbeat", "state",
                                "recovery", "timing"}


def test_a_comma_list_keeps_order_and_drops_repeats() -> None:
    assert parse_check_names(" loss, ordering ,loss") == ("loss", "ordering")
    assert parse_check_names(["ordering,state", "timing"]) == ("ordering", "state", "timing")


@pytest.mark.parametrize("text", ["nonsense", "loss,nonsense", "Loss"])
def test_an_unknown_check_is_named(text: str) -> None:
    bad = [part for part in text.split(",") if part not in CHECK_NAMES][0]
    with pytest.raises(ValueError, match=f"unknown check '{bad}' in --checks"):
        parse_check_names(text)


def test_thresholds_are_validated_up_front() -> None:
    assert validate_thresholds(["echo:p95<50", "failures<0.1%", "rps>1"]) == ["echo:p95<50", "failures<0.1%", "rps>1"]
    assert validate_thresholds(None) == []  # type: ignore[arg-type]
    for bad in ("echo:p95<<5", "echo:p95", "p95<fast"):
        with pytest.raises(ValueError, match="^--threshold: ") as caught:
            validate_thresholds(["echo:p95<50", bad])
        assert bad in str(caught.value)


# -- verdict rows and the console table -----------------------------------------


def test_rows_show_mark_count_and_first_evidence() -> None:
    assert rows(judgement(PASS, FAIL, UNSURE)) == [
        {"check": "ordering", "verdict": "PASS", "anomalies": 0, "evidence": ""},
        {"check": "loss", "verdict": "FAIL", "anomalies": 7, "evidence": "lost: u1 is missing 2 seq(s)"},
        {"check": "heartbeat", "verdict": "UNKNOWN", "anomalies": 0, "evidence": "no server pings seen"},
    ]


def test_format_table_has_a_line_per_check_and_the_overall_verdict() -> None:
    table = format_table(judgement(PASS, FAIL, UNSURE))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["Check", "Verdict", "Anomalies"]
    body = {line.split()[0]: line.split()[1:3] for line in lines[2:5]}
    assert body == {"ordering": ["PASS", "0"], "loss": ["FAIL", "7"], "heartbeat": ["UNKNOWN", "0"]}
    assert lines[-1].split() == ["Overall", "FAIL"]
    assert format_table(judgement(PASS)).splitlines()[-1].split() == ["Overall", "PASS"]
    assert format_table(judgement(PASS, UNSURE)).splitlines()[-1].split() == ["Overall", "UNKNOWN"]


def test_format_table_cuts_long_evidence_to_the_width() -> None:
    long = Verdict("loss", False, [Anomaly("lost", "x" * 500, {})], {"anomalies": 1})
    table = format_table(judgement(long), width=80)
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "lost: xxx" in table and table.splitlines()[2].endswith("...")


def test_exit_code_follows_the_overall_verdict_and_strict() -> None:
    assert (judgement(PASS).failed, judgement(PASS).exit_code) == (False, 0)
    assert judgement(PASS, FAIL).exit_code == 1
    assert judgement(PASS, UNSURE).exit_code == 0
    assert judgement(PASS, UNSURE, strict=True).exit_code == 1
    assert judgement(PASS, FAIL).to_dict()["valid"] is False


def test_judge_adds_timing_only_with_thresholds() -> None:
    history = History(complete=True)
    table = {"Aggregated": {"num_requests": 10, "num_failures": 0, "percentiles": {95: 5.0}, "rps": 1.0}}
    plain = judge(history, CHECK_NAMES, (), table)
    assert [v.name for v in plain.verdicts] == [n for n in CHECK_NAMES if n not in ("timing", "recovery")]
    timed = judge(history, ("timing",), ("p95<10",), table)
    assert [(v.name, v.valid) for v in timed.verdicts] == [("timing", True)]
    assert judge(history, ("timing",), ("p95<1",), table).failed


def test_an_empty_history_never_passes() -> None:
    result = judge(History(complete=True), ("ordering", "loss"))
    assert result.overall.valid is not True


# -- Locust's RequestStats -> the timing check ----------------------------------


def fed_stats() -> RequestStats:
    stats = RequestStats()
    for ms in (10, 20, 30, 40, 100):
        stats.log_request("WS", "echo", ms, 50)
    stats.log_request("WS", "connect", 7, 300)
    stats.log_error("WS", "connect", "refused")
    return stats


def test_stats_table_reads_a_real_request_stats() -> None:
    table = stats_table(fed_stats())
    assert set(table) == {"echo", "connect", "Aggregated"}
    echo = table["echo"]
    assert (echo["num_requests"], echo["num_failures"]) == (5, 0)
    assert (echo["min"], echo["max"], echo["avg"]) == (10, 100, 40)
    assert echo["percentiles"][50] == 30
    assert echo["percentiles"][99] == 100
    assert table["connect"]["num_failures"] == 1
    assert table["Aggregated"]["num_requests"] == 6
    assert table["Aggregated"]["num_failures"] == 1


def test_stats_table_of_an_unused_name_has_no_numbers() -> None:
    stats = RequestStats()
    stats.get("update", "WS")
    entry = stats_table(stats)["update"]
    assert entry["num_requests"] == 0 and entry["avg"] is None and entry["percentiles"][95] is None


def test_thresholds_judge_the_table_built_from_locust_stats() -> None:
    table = stats_table(fed_stats())
    assert check_timing(table, ["echo:p50<50", "echo:max<=100"]).valid is True
    failed = check_timing(table, ["echo:p99<50"])
    assert failed.valid is False and failed.anomalies[0].kind == "threshold"
    assert check_timing(table, ["failures<10%"]).valid is False  # 1 of 6 failed


def test_agreement_judges_only_runs_with_unstamped_traffic_or_no_publisher() -> None:
    """A run whose every message is stamped gets no agreement row (loss, ordering and duplicates
    judge it exactly); a run where nobody published gets one, UNKNOWN with its reason here."""
    stamped = History(published={"alice#1@p0.aa": {"room-0": PublishRecord(first_at=1.0, last_at=2.0)}})
    assert "agreement" not in [v.name for v in judge(stamped).verdicts]
    listened = [v for v in judge(History()).verdicts if v.name == "agreement"]
    assert len(listened) == 1 and listened[0].valid == UNKNOWN


def test_a_missing_worker_turns_every_pass_into_unknown_naming_it_and_keeps_fails() -> None:
    failed = Verdict("ordering", False, [Anomaly("fifo", "late", {})])
    history = History(complete=True)
    verdicts = {v.name: v for v in judge(history, ("ordering", "loss"), missing_workers=["w1 (vm_ab12)"]).verdicts}
    assert verdicts["loss"].valid == UNKNOWN and "w1 (vm_ab12)" in verdicts["loss"].stats["reason"]
    assert _blame_missing(failed, ["w1"]) is failed


def test_recovery_row_only_with_a_disruption_and_its_thresholds_reach_it() -> None:
    history = History(complete=True)
    table = {"Aggregated": {"num_requests": 10, "num_failures": 0, "percentiles": {95: 5.0}, "rps": 1.0}}
    plain = judge(history, CHECK_NAMES, ("recovery:max<10s",), table)
    assert "recovery" not in [v.name for v in plain.verdicts] and "timing" not in [v.name for v in plain.verdicts]
    history.disruptions = [{"spec": "5s:cut", "at": 5.0, "action": "cut", "started_at": 5.0, "ended_at": 5.0,
                            "result": "done"}]
    judged = judge(history, CHECK_NAMES, ("recovery:lost<1", "p95<10"), table)
    recovery = next(v for v in judged.verdicts if v.name == "recovery")
    assert list(recovery.stats["thresholds"]) == ["recovery:lost<1"]
    assert next(v for v in judged.verdicts if v.name == "timing").valid is True
