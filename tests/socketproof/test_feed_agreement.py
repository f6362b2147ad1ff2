"""Subscriber agreement on a real feed nobody in the run publishes to (issue 26, item 3b).

apps/feed_app.py (Starlette on uvicorn, a child process) publishes on a timer; N subscribers
in this process are the repo's own Client over docs/examples/feed_adapter.py (loaded as
`--protocol path:Class` loads it), recording into a real Recorder; the history is judged by
the real check. A clean feed passes at 100 subscribers; the feed's own drop (one subscriber)
and duplicate switches, and a fault proxy dropping frames in front of some subscribers, each
fail it with evidence naming the subscribers hit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from apps.feed_app import running_app
from checks.agreement import check_agreement
from checks.fold import fold
from checks.verdict import Verdict
from client.adapter import SessionContext
from client.adapters import AdapterSettings, load_adapter_class
from client.client import Client
from client.recorder import Recorder
from socketproof.proxy import FaultProxy
from tests.socketproof.support import ROOT

FeedAdapter = load_adapter_class(f"{ROOT}/docs/examples/feed_adapter.py:FeedAdapter")
CHANNELS = ("feed-0", "feed-1")


@contextmanager
def subscribers(urls: list[str], channels: tuple[str, ...] = CHANNELS) -> Iterator[tuple[Recorder, list[Client]]]:
    """One listen-only Client per URL (in that order: the first is the feed's oldest connection),
    recording into one Recorder; all closed at the end."""
    recorder = Recorder("p0", adapter=FeedAdapter.name, capabilities=FeedAdapter.capabilities, fold=fold)
    adapter = FeedAdapter(AdapterSettings(), channels=channels)
    clients = []
    try:
        for i, url in enumerate(urls):
            label = f"sub-{i}"
            client = Client(url, adapter, SessionContext(label, label), hooks=recorder.connection(label, label),
                            timeout=10.0)
            client.on_delivery = lambda delivery: None  # listen only: nothing piles up in an inbox
            client.connect()
            clients.append(client)
        yield recorder, clients
    finally:
        for client in clients:
            client.close()


def listen(recorder: Recorder, seconds: float) -> Verdict:
    time.sleep(seconds)
    recorder.finish()  # the feed never drains: the check's grace covers what is in flight now
    return check_agreement(recorder.history())


def missed_by(verdict: Verdict) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in verdict.anomalies:
        if a.kind == "missed":
            out[a.evidence["label"]] = out.get(a.evidence["label"], 0) + a.evidence["missed_count"]
    return out


def test_a_clean_feed_passes_at_100_subscribers() -> None:
    with running_app(interval=0.1, channels=",".join(CHANNELS)) as app:
        with subscribers([app.ws_url] * 100) as (recorder, _):
            app.wait_connections(100)
            verdict = listen(recorder, 5.0)
    assert verdict.valid is True, (verdict.stats, verdict.anomalies[:3])
    stats = verdict.stats
    print(f"clean feed, 100 subscribers: {stats}")
    assert stats["channels_judged"] == 2 and stats["subscribers"] == 200
    assert stats["messages"] >= 2 * 40 and stats["unstamped_deliveries"] >= 100 * 2 * 40
    assert stats["logged"] == stats["unstamped_deliveries"] and stats["order_pairs_compared"] == 0


def test_the_feeds_drop_for_one_subscriber_is_missed_by_that_subscriber_only() -> None:
    with running_app(interval=0.05, channels=",".join(CHANNELS), drop_for_one=5) as app:
        with subscribers([app.ws_url] * 10) as (recorder, _):
            verdict = listen(recorder, 4.0)
            dropped = app.metrics()['feed_faults_total{kind="drop"}']
    assert verdict.valid is False and {a.kind for a in verdict.anomalies} == {"missed"}
    missed = missed_by(verdict)
    assert list(missed) == ["sub-0"]  # the oldest connection: the victim
    assert 0 < missed["sub-0"] <= dropped, (missed, dropped)
    (a,) = [a for a in verdict.anomalies if a.evidence["channel"] == "feed-0"]
    sample = a.evidence["samples"][0]
    assert sample["got"] == sample["of"] == 9 and len(sample["id"]) == 16
    print(f"drop-for-one 5: {dropped:.0f} dropped by the feed, {missed['sub-0']} missed found; "
          f"{a.message}")


def test_the_feeds_duplicates_are_duplicates_on_every_subscriber() -> None:
    with running_app(interval=0.05, channels="feed-0", duplicate_every=7) as app:
        with subscribers([app.ws_url] * 10, ("feed-0",)) as (recorder, _):
            verdict = listen(recorder, 3.0)
            sent_twice = app.metrics()['feed_faults_total{kind="duplicate"}']
    assert verdict.valid is False and {a.kind for a in verdict.anomalies} == {"duplicate"}
    assert {a.evidence["label"] for a in verdict.anomalies} == {f"sub-{i}" for i in range(10)}
    found = verdict.stats["duplicates"]
    assert 0 < found <= sent_twice and found >= sent_twice - 10, (found, sent_twice)  # the last may be in flight
    print(f"duplicate-every 7: {sent_twice:.0f} sent twice, {found} duplicates found; {verdict.anomalies[0].message}")


def test_a_proxy_dropping_frames_in_front_of_some_subscribers_is_missed_by_those() -> None:
    proxied = {1, 4, 7}
    with running_app(interval=0.05, channels="feed-0") as app:
        with FaultProxy(app.ws_url, "down:drop=0.1", seed=3) as proxy:
            urls = [proxy.url if i in proxied else app.ws_url for i in range(12)]
            with subscribers(urls, ("feed-0",)) as (recorder, _):
                verdict = listen(recorder, 4.0)
            dropped = sum(n for key, n in proxy.counts()["faults"].items() if "drop" in key)
    assert verdict.valid is False and {a.kind for a in verdict.anomalies} == {"missed"}
    missed = missed_by(verdict)
    assert set(missed) == {f"sub-{i}" for i in proxied}, missed
    total = sum(missed.values())
    assert 0 < total <= dropped, (missed, dropped)
    print(f"proxy drop=0.1 before 3 of 12 subscribers: {dropped} frames dropped, {total} missed found: {missed}")
