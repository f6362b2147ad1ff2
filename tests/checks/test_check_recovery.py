"""The recovery check over histories built like a run's (tests/checks/scenario.py), and its thresholds."""
from __future__ import annotations

import pytest

from checks import run_checks
from checks.recovery import check_recovery
from checks.timing import parse_threshold
from history import History
from tests.checks.scenario import Run

RESTART = {"spec": "8s:restart", "at": 8.0, "action": "restart", "started_at": 8.0, "ended_at": 8.5,
           "result": "done", "exit_code": None, "detail": "back in 0.5s"}


def restarted(back: dict[str, float | None], end: float = 20.0) -> History:
    """Users each with a connection from t=1 lost at t=8.1 (by the server), back at the given time (None: never)."""
    run = Run()
    for user, again in back.items():
        c = run.open(f"{user}-1", user, t=1.0)
        c.closed(1006, "", "abrupt", 8.1)
        if again is not None:
            run.open(f"{user}-2", user, t=again)
    history = run.history(end=end)
    history.disruptions = [dict(RESTART)]
    return history


def test_no_disruption_no_row() -> None:
    from checks.registry import CHECKS

    assert CHECKS["recovery"].applies(History()) is False
    assert CHECKS["recovery"].applies(restarted({"a": 9.0})) is True


def test_all_back_passes_with_stats() -> None:
    v = check_recovery(restarted({"alice": 9.0, "bob": 8.6, "carol": 10.1}),
                       ["recovery:max<10s", "recovery:lost<1"])
    assert v.valid is True, v
    d = v.stats["disruptions"][0]
    assert d["connections_lost"] == 3 and d["identities_lost"] == 3 and d["never_back_count"] == 0
    assert d["recovery_s"]["max"] == pytest.approx(2.0) and d["slowest"]["user"] == "carol"
    assert d["storm_peak_per_s"] == 1 and d["storm_per_s"][1:3] == [1, 1]
    assert d["outage_messages"] == {"streams_compared": 0, "missed": 0, "duplicated": 0, "replayed": 0}
    assert "3 connections lost" in v.stats["summary"] and "carol" in v.stats["summary"]


def test_slow_recovery_breaks_threshold_naming_slowest() -> None:
    v = check_recovery(restarted({"alice": 9.0, "bob": 15.1}), ["recovery:max<3s"])
    assert v.valid is False
    [a] = v.anomalies
    assert a.kind == "threshold" and "bob" in a.message and a.evidence["slowest"]["user"] == "bob"
    assert a.evidence["actual"] == pytest.approx(7.0)


def test_never_back_fails_naming_them() -> None:
    v = check_recovery(restarted({"alice": 9.0, "bob": None}), ["recovery:lost<1"])
    assert v.valid is False
    kinds = {a.kind for a in v.anomalies}
    assert kinds == {"never_reconnected", "threshold"}
    never = next(a for a in v.anomalies if a.kind == "never_reconnected")
    assert never.evidence["users"] == ["bob"]


def test_client_closes_and_later_connections_are_not_lost() -> None:
    run = Run()
    c = run.open("a-1", "a", t=1.0)
    c.closed(1000, "bye", "client", 8.2)  # the user closed it itself
    run.open("b-1", "b", t=9.0)  # opened after the disruption: nothing lost
    history = run.history(end=20.0)
    history.disruptions = [dict(RESTART)]
    v = check_recovery(history, ["recovery:max<1s"])
    assert v.valid is True and v.stats["disruptions"][0]["connections_lost"] == 0
    assert v.stats["thresholds"]["recovery:max<1s"]["note"] == "no connection lost"


def test_failed_disruption_fails_with_its_exit_code() -> None:
    history = restarted({"a": 9.0})
    history.disruptions = [{"spec": "5s:run exit 3", "at": 5.0, "action": "run", "started_at": 5.0,
                            "ended_at": 5.1, "result": "failed", "exit_code": 3, "detail": "exit 3"}]
    v = check_recovery(history)
    assert v.valid is False and v.anomalies[0].kind == "disruption_failed"
    assert v.anomalies[0].evidence["exit_code"] == 3


def test_incomplete_or_not_run_is_unknown() -> None:
    assert check_recovery(_incomplete()).valid == "unknown"
    history = restarted({"a": 9.0})
    history.disruptions = [{**RESTART, "started_at": None, "result": "cancelled"}]
    assert check_recovery(history).valid == "unknown"


def _incomplete() -> History:
    history = restarted({"a": 9.0})
    history.complete = False
    return history


def test_disruptions_round_trip_and_old_dicts() -> None:
    history = restarted({"a": 9.0})
    again = History.from_dict(history.to_dict())
    assert again.disruptions == history.disruptions
    old = history.to_dict()
    del old["disruptions"]
    assert History.from_dict(old).disruptions == []
    assert History().merge(history).disruptions == history.disruptions


def test_run_checks_passes_recovery_thresholds_only_to_it() -> None:
    [v] = run_checks(restarted({"a": 12.0}), ["recovery"], thresholds=[parse_threshold("recovery:p95<2s")])
    assert v.valid is False and v.anomalies[0].evidence["metric"] == "p95"


@pytest.mark.parametrize("expr,metric,limit", [("recovery:max<10s", "max", 10.0), ("recovery:lost<1", "lost", 1.0),
                                                ("recovery:p95<1500ms", "p95", 1.5)])
def test_recovery_thresholds_parse(expr: str, metric: str, limit: float) -> None:
    t = parse_threshold(expr)
    assert (t.family, t.metric, t.limit) == ("recovery", metric, limit)


@pytest.mark.parametrize("expr", ["recovery:max<10", "recovery:avg<1s", "recovery:lost<1s", "echo:p95<50s"])
def test_bad_recovery_thresholds(expr: str) -> None:
    with pytest.raises(ValueError, match="bad threshold"):
        parse_threshold(expr)


def outage(*, resumed: bool | None = None, gap: tuple[int, int | None] | None = None,
           replay_from: int | None = None) -> History:
    """A sender publishing to `room` every second from t=2 (counter n at t=n+1); a receiver whose
    connection the 8s restart closed at 8.1 and whose next one opened at 10.0 (resumed or not),
    getting each message 0.05 s after its publish while open (from `replay_from` on when given)."""
    from client.adapter import ResumeInfo

    run = Run(caps=frozenset({"publish_ack", "resume"}))
    sender = run.open("s-1", "s", ("room",), t=1.0)
    before = run.open("r-1", "r", ("room",), t=1.0)
    stamps = [run.publish(sender, "s", "room", t=float(t))[0] for t in range(2, 20)]
    for stamp in stamps:
        if stamp.sent_at + 0.05 < 8.1:
            run.deliver(before, stamp, None, stamp.sent_at + 0.05)
    before.closed(1006, "", "abrupt", 8.1)
    info = ResumeInfo(requested=0, server_last=0, replay=0, resumed=resumed, gap=gap) if resumed is not None else None
    after = run.open("r-2", "r", ("room",), t=10.0, resume=info)
    for stamp in stamps:
        if stamp.sent_at >= 10.0 or (replay_from is not None and stamp.counter >= replay_from):
            run.deliver(after, stamp, None, max(10.01, stamp.sent_at + 0.05))
    history = run.history(end=20.0)
    history.disruptions = [dict(RESTART)]
    return history


def test_messages_published_while_gone_are_missed_and_attributed_not_failed() -> None:
    v = check_recovery(outage())
    assert v.valid is True, v  # the disruption's cost, not a server bug
    messages = v.stats["disruptions"][0]["outage_messages"]
    assert messages == {"streams_compared": 1, "missed": 1, "duplicated": 0, "replayed": 0}  # counter 8 (t=9)
    assert "1 messages missed" in v.stats["summary"]


def test_missed_threshold_fails_with_the_count() -> None:
    v = check_recovery(outage(), ["recovery:missed<1"])
    assert v.valid is False
    [a] = v.anomalies
    assert a.kind == "threshold" and "1 message(s)" in a.message and a.evidence["actual"] == 1


def test_a_replay_that_fills_the_gap_misses_nothing_and_overlap_counts_as_duplicated() -> None:
    v = check_recovery(outage(resumed=True, replay_from=6), ["recovery:missed<1"])
    assert v.valid is True, v
    assert v.stats["disruptions"][0]["outage_messages"]["missed"] == 0
    assert v.stats["disruptions"][0]["outage_messages"]["duplicated"] == 2  # 6 and 7 came twice


def test_a_resume_that_announced_no_gap_but_missed_messages_fails() -> None:
    v = check_recovery(outage(resumed=True))
    assert v.valid is False
    [a] = v.anomalies
    assert a.kind == "resume_lost" and a.evidence["count"] == 1
    assert a.evidence["samples"][0]["missed"] == [8, 8] and a.evidence["samples"][0]["resumed"] == "r-2"


def test_an_announced_gap_is_the_disruption_cost_not_a_lie() -> None:
    v = check_recovery(outage(resumed=False, gap=(8, 8)))
    assert v.valid is True, v
    assert v.stats["disruptions"][0]["outage_messages"]["missed"] == 1


def test_deliver_latency_phases_are_reported() -> None:
    history = restarted({"a": 9.0})
    history.disruptions[0]["latency_ms"] = {"before": {"count": 10, "p50": 4, "p95": 9, "max": 12},
                                            "during": {"count": 2, "p50": 40, "p95": 900, "max": 900},
                                            "after": {"count": 8, "p50": 5, "p95": 11, "max": 20}}
    v = check_recovery(history)
    assert v.stats["disruptions"][0]["deliver_latency_ms"]["during"]["p95"] == 900
    assert "deliver p95 9 ms before / 900 ms during / 11 ms after" in v.stats["summary"]


def test_a_sender_that_reconnected_is_a_new_stream_missed_until_the_receiver_is_back() -> None:
    """Stamps name the sending connection: after a restart every sender is a new stream; what it
    published before the receiver's next connection got its first message was missed."""
    run = Run()
    old_sender = run.open("s-1", "s", ("room",), t=1.0)
    receiver = run.open("r-1", "r", ("room",), t=1.0)
    run.broadcast(old_sender, "s-1", "room", [receiver], t=5.0)
    old_sender.closed(1006, "", "abrupt", 8.1)
    receiver.closed(1006, "", "abrupt", 8.1)
    sender = run.open("s-2", "s", ("room",), t=9.0)
    stamps = [run.publish(sender, "s-2", "room", t=float(t))[0] for t in range(9, 15)]  # counters 1..6
    back = run.open("r-2", "r", ("room",), t=11.5)
    for stamp in stamps[3:]:
        run.deliver(back, stamp, None, stamp.sent_at + 0.05)
    history = run.history(end=20.0)
    history.disruptions = [dict(RESTART)]
    v = check_recovery(history, ["recovery:missed<1"])
    assert v.stats["disruptions"][0]["outage_messages"]["missed"] == 3  # published at 9, 10 and 11
    assert v.valid is False and v.anomalies[0].evidence["actual"] == 3
