"""Subscriber agreement: histories with no publisher, built through the real Recorder.

Each subscriber is a connection subscribed to a channel from `opened`; deliveries carry no
stamp and are known by their message id. Times are explicit (GRACE is 1 s).
"""
import itertools
import random

import pytest

import history.messages
from checks.agreement import ORDER_WORK_CAP, check_agreement
from checks.fold import fold
from checks.verdict import UNKNOWN
from client.adapter import Stamp
from history import History, key_text, message_key
from tests.checks.scenario import PLAIN, Run

CH = "feed-0"


def subscribers(run: Run, n: int, t: float = 1.0, channel: str = CH, prefix: str = "s") -> list:
    return [run.open(f"{prefix}{i}", channels=(channel,), t=t) for i in range(n)]


def feed(subs: list, ids: list, t0: float = 3.0, dt: float = 0.1, channel: str = CH,
         skip: dict | None = None) -> dict:
    """Deliver `ids` in order to every subscriber (all of them by `skip[i]` but those); returns id -> time."""
    times = {}
    for n, mid in enumerate(ids):
        t = t0 + n * dt
        times[mid] = t
        for i, c in enumerate(subs):
            if skip and mid in skip.get(i, ()):
                continue
            c.delivered(channel, None, None, mid, t + 0.001 * i)
    return times


def ids(n: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def kinds(v) -> list[str]:
    return sorted(a.kind for a in v.anomalies)


# -- unknown ---------------------------------------------------------------------------------


def test_an_empty_history_is_unknown():
    v = check_agreement(History(complete=True))
    assert v.valid == UNKNOWN and v.stats["reason"] == "no message was delivered"


def test_an_incomplete_history_is_unknown_but_anomalies_still_fail():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    feed(subs, ids(10))
    v = check_agreement(run.history(complete=False))
    assert v.valid == UNKNOWN and "cut short" in v.stats["reason"]
    run2 = Run(PLAIN)
    subs = subscribers(run2, 3)
    feed(subs, ids(10), skip={0: {"m4"}})
    assert check_agreement(run2.history(complete=False)).valid is False


def test_a_run_whose_messages_all_carry_a_stamp_is_left_to_the_stamp_checks():
    run = Run(PLAIN)
    pub = run.open("pub")
    subs = subscribers(run, 3, channel="room")
    for n in range(5):
        run.broadcast(pub, "pub", "room", subs, 2.0 + n)
    v = check_agreement(run.history())
    assert v.valid == UNKNOWN
    assert v.stats["reason"] == "every message carried a stamp: loss/ordering/duplicates judge this run"


def test_unstamped_deliveries_without_any_identity_are_unknown():
    run = Run(PLAIN)
    subs = subscribers(run, 2)
    for c in subs:
        c.delivered(CH, None, None, None, 3.0)
    v = check_agreement(run.history())
    assert v.valid == UNKNOWN and "no message id" in v.stats["reason"] and v.stats["unidentified"] == 2


def test_one_subscriber_per_channel_is_unknown():
    run = Run(PLAIN)
    (a,) = subscribers(run, 1, channel="a")
    (b,) = subscribers(run, 1, channel="b", prefix="t")
    feed([a], ids(5), channel="a")
    feed([b], ids(5, "n"), channel="b")
    v = check_agreement(run.history())
    assert v.valid == UNKNOWN and v.stats["reason"].startswith("only one subscriber per channel (2 channel(s)")


def test_a_channel_with_one_subscriber_beside_a_judged_one_passes_and_is_counted():
    run = Run(PLAIN)
    feed(subscribers(run, 3), ids(10))
    (lone,) = subscribers(run, 1, channel="lone", prefix="l")
    feed([lone], ids(3, "x"), channel="lone")
    v = check_agreement(run.history())
    assert v.valid is True and v.stats["channels_judged"] == 1 and v.stats["single_subscriber_channels"] == 1
    assert v.stats["single_subscriber_examples"] == ["lone"]


# -- clean -----------------------------------------------------------------------------------


def test_a_clean_feed_passes():
    run = Run(PLAIN)
    subs = subscribers(run, 5)
    feed(subs, ids(50))
    v = check_agreement(run.history())
    assert v.valid is True and v.anomalies == []
    assert (v.stats["channels_judged"], v.stats["subscribers"], v.stats["messages"]) == (1, 5, 50)
    assert v.stats["unstamped_deliveries"] == 250 and v.stats["order_deviants"] == 0


def test_stamped_traffic_beside_the_feed_is_not_judged_here():
    run = Run(PLAIN)
    pub = run.open("pub")
    subs = subscribers(run, 3)
    feed(subs, ids(10))
    stamp, _ = run.publish(pub, "pub", CH, 4.0)
    run.deliver(subs[0], stamp, None, 4.05)  # only one got it: the loss check's business
    v = check_agreement(run.history())
    assert v.valid is True and v.stats["messages"] == 10


def test_a_body_hash_is_as_good_as_an_id():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    bodies = [history.messages.content_key({"tick": n}) for n in range(10)]
    feed(subs, bodies, skip={2: {bodies[5]}})
    (a,) = check_agreement(run.history()).anomalies
    assert a.kind == "missed" and a.evidence["samples"][0]["id"] == key_text(bodies[5])


# -- missed ----------------------------------------------------------------------------------


def test_a_message_everyone_else_got_is_missed_with_evidence():
    run = Run(PLAIN)
    subs = subscribers(run, 4)
    times = feed(subs, ids(20), skip={2: {"m5", "m11"}})
    v = check_agreement(run.history())
    assert v.valid is False and kinds(v) == ["missed"]
    (a,) = v.anomalies
    e = a.evidence
    assert (e["label"], e["channel"], e["missed_count"], e["open_at_end"]) == ("s2", CH, 2, True)
    assert (e["subscribed_from"], e["subscribed_until"]) == (1.0, 10.0)
    assert e["samples"] == [
        {"id": key_text(message_key("m5")), "at": pytest.approx(times["m5"]), "got": 3, "of": 3},
        {"id": key_text(message_key("m11")), "at": pytest.approx(times["m11"]), "got": 3, "of": 3}]
    assert "s2 (feed-0, open at the end of the run) missed 2 message(s)" in a.message
    assert v.stats["missed"] == 2


def test_a_drop_that_hits_several_subscribers_at_once_is_missed_by_each():
    run = Run(PLAIN)
    subs = subscribers(run, 10)
    feed(subs, ids(20), skip={0: {"m3"}, 1: {"m3", "m7"}, 2: {"m3"}})
    v = check_agreement(run.history())
    missed = {a.evidence["label"]: a.evidence["missed_count"] for a in v.anomalies}
    assert missed == {"s0": 1, "s1": 2, "s2": 1}
    s0 = next(a for a in v.anomalies if a.evidence["label"] == "s0")
    assert s0.evidence["samples"][0]["got"] == 7 and s0.evidence["samples"][0]["of"] == 9


def test_a_message_only_a_few_got_is_counted_against_nobody():
    run = Run(PLAIN)
    subs = subscribers(run, 5)
    feed(subs, ids(10))
    subs[0].delivered(CH, None, None, "only-for-s0", 4.55)  # e.g. its own notice
    feed(subs[:2], ["for-two"], t0=4.6)  # two of five: a minority
    assert check_agreement(run.history()).valid is True


def test_two_subscribers_the_one_that_missed_is_named():
    run = Run(PLAIN)
    subs = subscribers(run, 2)
    feed(subs, ids(10), skip={1: {"m4"}})
    (a,) = check_agreement(run.history()).anomalies
    assert a.evidence["label"] == "s1" and a.evidence["samples"][0]["of"] == 1


# -- windows ---------------------------------------------------------------------------------


def test_a_late_subscriber_is_not_owed_earlier_messages():
    run = Run(PLAIN)
    early = subscribers(run, 3)
    late = run.open("late", channels=(CH,), t=5.0)
    times = feed(early, ids(40))  # 3.0 .. 6.9
    for m, t in times.items():
        if t >= 5.05:  # nothing before it subscribed, nor in its first 50 ms: inside the grace
            late.delivered(CH, None, None, m, t + 0.01)
    v = check_agreement(run.history())
    assert v.valid is True and v.stats["subscribers"] == 4


def test_a_late_subscriber_still_misses_what_came_after_its_grace():
    run = Run(PLAIN)
    early = subscribers(run, 3)
    late = run.open("late", channels=(CH,), t=5.0)
    times = feed(early, ids(40))
    for m, t in times.items():
        if t >= 5.0 and m != "m35":  # 6.5: well inside its window
            late.delivered(CH, None, None, m, t + 0.01)
    (a,) = check_agreement(run.history()).anomalies
    assert a.evidence["label"] == "late" and a.evidence["samples"][0]["id"] == key_text(message_key("m35"))
    assert a.evidence["subscribed_from"] == 5.0


def test_a_closed_subscriber_is_not_owed_what_came_after_or_just_before_its_close():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    gone = run.open("gone", channels=(CH,), t=1.0)
    times = feed(subs, ids(40))  # 3.0 .. 6.9
    for m, t in times.items():
        if t < 4.5:
            gone.delivered(CH, None, None, m, t)
    gone.closed(1000, "", "client", 5.0)  # 4.5 .. 5.0 in flight: within the grace
    assert check_agreement(run.history()).valid is True
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    gone = run.open("gone", channels=(CH,), t=1.0)
    times = feed(subs, ids(40))
    for m, t in times.items():
        if t < 3.45:
            gone.delivered(CH, None, None, m, t)
    gone.closed(1000, "", "client", 5.05)
    (a,) = check_agreement(run.history()).anomalies
    assert a.evidence["label"] == "gone" and a.evidence["open_at_end"] is False
    assert a.evidence["missed_count"] == 6 and a.evidence["subscribed_until"] == 5.05  # 3.5 .. 4.0


def test_a_subscriber_that_got_nothing_missed_everything_in_its_window():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    silent = run.open("silent", channels=(CH,), t=1.0)
    feed(subs, ids(10))
    (a,) = check_agreement(run.history()).anomalies
    assert a.evidence["label"] == silent.h.label and a.evidence["missed_count"] == 10


def test_the_end_of_the_run_has_a_grace_too():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    feed(subs, ids(10), t0=3.0)
    feed(subs[:2], ["last"], t0=9.5)  # 0.5 s before the end (10.0): s2 may still get it
    assert check_agreement(run.history(end=10.0)).valid is True


def _clocks(e_process: str) -> History:
    # `c` (w1) closes at 20.0; m-late is published at 19.6 by w1's clock: d (w1) gets it then,
    # e at 16.6 by its own clock (3 s behind when e runs in w2). Before d, e got m0..m9 too.
    w1 = Run(PLAIN, process="w1")
    other = w1 if e_process == "w1" else Run(PLAIN, process=e_process)
    c, d = subscribers(w1, 2, t=1.0)
    (e,) = subscribers(other, 1, t=-2.0, prefix="e")
    for m, t in feed([c, d], ids(10), t0=3.0).items():
        e.delivered(CH, None, None, m, t - 3.0)
    d.delivered(CH, None, None, "m-late", 19.6)
    e.delivered(CH, None, None, "m-late", 16.6)
    c.closed(1000, "", "client", 20.0)
    h = w1.history(end=30.0)
    return h if other is w1 else h.merge(other.history(end=27.0))


def test_each_process_reads_message_times_in_its_own_clock():
    assert check_agreement(_clocks("w2")).valid is True  # m-late is inside c's grace, in c's clock
    (a,) = check_agreement(_clocks("w1")).anomalies  # the same times in one clock: c was owed it
    assert a.evidence["label"] == "s0"
    assert a.evidence["samples"][0]["at"] == 16.6


# -- duplicate -------------------------------------------------------------------------------


def test_the_same_message_twice_on_one_connection_is_a_duplicate():
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    feed(subs, ids(10))
    subs[1].delivered(CH, None, None, "m4", 4.5)
    v = check_agreement(run.history())
    assert kinds(v) == ["duplicate"]
    (a,) = v.anomalies
    assert (a.evidence["label"], a.evidence["count"]) == ("s1", 1)
    assert a.evidence["samples"] == [{"channel": CH, "id": key_text(message_key("m4")), "count": 2,
                                      "at": [pytest.approx(3.401), 4.5]}]
    assert v.stats["duplicates"] == 1


def test_a_folded_connection_keeps_its_duplicates():
    run = Run(PLAIN, keep_closed=0, fold=fold)
    subs = subscribers(run, 3)
    feed(subs, ids(5))
    subs[0].delivered(CH, None, None, "m1", 3.9)
    subs[0].closed(1000, "", "client", 4.0)
    h = run.history()
    assert h.folded.connections == 1
    v = check_agreement(h)
    (a,) = [a for a in v.anomalies if a.kind == "duplicate"]
    assert a.evidence["folded"] is True and a.evidence["count"] == 1
    assert a.evidence["samples"][0]["label"] == "s0"


# -- order -----------------------------------------------------------------------------------


def test_two_messages_in_opposite_orders_name_both_subscribers():
    run = Run(PLAIN)
    a, b, c = subscribers(run, 3)
    order = ids(10)
    feed([a, b], order)
    swapped = order[:4] + [order[5], order[4]] + order[6:]
    feed([c], swapped)
    v = check_agreement(run.history())
    assert kinds(v) == ["order"]
    (o,) = v.anomalies
    e = o.evidence
    assert (e["label"], e["disagrees_with"], e["compared_with_all"]) == ("s2", 2, True)
    m4, m5 = key_text(message_key("m4")), key_text(message_key("m5"))
    assert e["samples"][0]["this_got"] == [m5, m4] and e["samples"][0]["other_got"] == [m4, m5]
    assert {s["other"] for s in e["samples"]} == {"s0", "s1"}
    assert e["samples"][0]["this_at"][0] < e["samples"][0]["this_at"][1]
    assert e["samples"][0]["other_at"][0] < e["samples"][0]["other_at"][1]
    assert f"{m5} before {m4}" in o.message


def test_an_inversion_between_messages_far_apart_is_found():
    run = Run(PLAIN)
    a, b = subscribers(run, 2)
    feed([a], ids(30))
    mine = ids(30)
    mine[2], mine[27] = mine[27], mine[2]
    feed([b], mine)
    found = check_agreement(run.history()).anomalies
    assert found and {o.kind for o in found} == {"order"}  # one against one: either side, or both
    o = found[0]
    assert o.evidence["disagrees_with"] == 1 and o.evidence["samples"][0]["other"] in ("s0", "s1")
    sample = o.evidence["samples"][0]
    assert sample["this_got"] == sample["other_got"][::-1]


def _brute_force_inverted_pairs(orders: dict[str, list[str]]) -> set[frozenset]:
    pairs = set()
    for (xl, x), (yl, y) in itertools.combinations(orders.items(), 2):
        px, py = {k: i for i, k in enumerate(x)}, {k: i for i, k in enumerate(y)}
        common = [k for k in x if k in py]
        if any((px[p] < px[q]) != (py[p] < py[q]) for p, q in itertools.combinations(common, 2)):
            pairs.add(frozenset((xl, yl)))
    return pairs


def _random_orders(seed: int) -> tuple[Run, dict[str, list[str]]]:
    rnd = random.Random(seed)
    run = Run(PLAIN)
    subs = subscribers(run, rnd.randint(2, 8))
    msgs = ids(rnd.randint(3, 14))
    orders = {}
    for c in subs:
        mine = [m for m in msgs if rnd.random() > 0.25]
        if rnd.random() < 0.15:
            rnd.shuffle(mine)
        for _ in range(rnd.choice((0, 0, 1, 2))):  # most keep the feed's order, some swap
            if mine:
                i, j = rnd.randrange(len(mine)), rnd.randrange(len(mine))
                mine[i], mine[j] = mine[j], mine[i]
        orders[c.h.label] = mine
        for k, m in enumerate(mine):
            c.delivered(CH, None, None, m, 3.0 + 0.1 * rnd.random() + 0.001 * k)
    return run, orders


@pytest.mark.parametrize("seed", range(60))
def test_the_order_check_finds_exactly_the_pairs_of_subscribers_that_disagree(seed, monkeypatch):
    """Against a brute force over every pair of subscribers and every pair of messages: with the
    witnesses uncapped, the pairs named are exactly those; capped, each pair has a named side."""
    run, orders = _random_orders(seed)
    truth = _brute_force_inverted_pairs(orders)
    h = run.history()
    capped = [a for a in check_agreement(h, grace=0.0).anomalies if a.kind == "order"]
    named = {a.evidence["label"] for a in capped}
    assert all(named & pair for pair in truth) and all(len(a.evidence["samples"]) <= 5 for a in capped)
    monkeypatch.setattr("checks.agreement.WITNESSES", 1000)
    found = {frozenset((a.evidence["label"], w["other"]))
             for a in check_agreement(h, grace=0.0).anomalies if a.kind == "order" for w in a.evidence["samples"]}
    assert found == truth, orders


def test_a_deviant_is_compared_until_five_witnesses():
    run = Run(PLAIN)
    subs = subscribers(run, 12)
    order = ids(10)
    feed(subs[:11], order)
    feed(subs[11:], list(reversed(order)))
    (o,) = check_agreement(run.history(), grace=100.0).anomalies
    e = o.evidence
    assert (e["label"], e["disagrees_with"], e["compared_with_all"]) == ("s11", 5, False)
    assert "opposite order to at least 5 other subscriber(s)" in o.message


def _three_way_cycle(run: Run) -> None:
    """a<b on one, b<c on another, c<a on the third: no two of them share two messages."""
    for c, pair in zip(subscribers(run, 3), (["a", "b"], ["b", "c"], ["c", "a"]), strict=True):
        for k, m in enumerate(pair):
            c.delivered(CH, None, None, m, 3.0 + k)


def test_a_cycle_no_two_subscribers_show_is_not_an_order_anomaly():
    run = Run(PLAIN)
    _three_way_cycle(run)
    v = check_agreement(run.history(), grace=100.0)  # nothing owed to anyone: only the order is judged
    assert v.valid is True and v.stats["order_deviants"] >= 1 and v.stats["order_pairs_compared"] >= 2


def test_the_order_work_is_capped_and_then_unknown(monkeypatch):
    monkeypatch.setattr("checks.agreement.ORDER_WORK_CAP", 1)
    run = Run(PLAIN)
    _three_way_cycle(run)
    v = check_agreement(run.history(), grace=100.0)
    assert v.valid == UNKNOWN and "cap of 1 steps" in v.stats["reason"]
    assert ORDER_WORK_CAP == 4_000_000


def test_a_clean_channel_needs_no_pairwise_comparison():
    run = Run(PLAIN)
    subs = subscribers(run, 50)
    feed(subs, ids(200), dt=0.01)
    v = check_agreement(run.history())
    assert v.valid is True and v.stats["order_pairs_compared"] == 0 and v.stats["order_work"] == 0


# -- truncation ------------------------------------------------------------------------------


def test_a_log_over_the_cap_makes_its_channel_unknown(monkeypatch):
    monkeypatch.setattr(history.messages, "LOG_CAP", 8)
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    feed(subs, ids(20), dt=1.0)
    h = run.history(end=30.0)
    log = h.connections[0].received[CH].log
    assert (len(log), log.truncated) == (8, 12)
    v = check_agreement(h)
    assert v.valid == UNKNOWN and "over the recorder's cap" in v.stats["reason"]
    assert v.stats["truncated_channels"] == [CH]


def test_a_truncated_log_still_proves_what_it_holds(monkeypatch):
    monkeypatch.setattr(history.messages, "LOG_CAP", 8)
    run = Run(PLAIN)
    subs = subscribers(run, 3)
    feed(subs, ids(20), dt=1.0, skip={1: {"m2"}})
    v = check_agreement(run.history(end=30.0))
    (a,) = v.anomalies
    assert a.kind == "missed" and a.evidence["label"] == "s1" and a.evidence["missed_count"] == 1
    assert a.evidence["subscribed_until"] == 11.001  # its last kept receipt: after it, nothing is owed


def test_the_connection_budget_truncates_too(monkeypatch):
    monkeypatch.setattr("client.recorder.LOG_BUDGET", 10)
    run = Run(PLAIN)
    (c,) = subscribers(run, 1)
    for n in range(8):
        c.delivered("a", None, None, f"a{n}", 3.0 + n)
        c.delivered("b", None, None, f"b{n}", 3.0 + n)
    logs = run.history().connections[0].received
    assert len(logs["a"].log) + len(logs["b"].log) == 10
    assert logs["a"].log.truncated + logs["b"].log.truncated == 6


# -- the wire --------------------------------------------------------------------------------


def test_the_verdict_is_the_same_after_the_workers_json_and_the_merge():
    w1, w2 = Run(PLAIN, process="w1"), Run(PLAIN, process="w2")
    a = subscribers(w1, 3)
    b = subscribers(w2, 3, prefix="t")
    feed(a + b, ids(20), skip={4: {"m7"}})
    merged = History.from_json(w1.history().to_json()).merge(History.from_json(w2.history().to_json()))
    v = check_agreement(merged)
    (m,) = v.anomalies
    assert (m.kind, m.evidence["label"], m.evidence["process"]) == ("missed", "t1", "w2")


def test_a_stamp_is_never_a_message_key():
    run = Run(PLAIN)
    subs = subscribers(run, 2)
    for c in subs:
        c.delivered(CH, Stamp("p", CH, 1, 2.0), None, "id-1", 3.0)
    assert all(c.received[CH].log is None for c in run.history().connections)
