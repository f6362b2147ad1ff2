"""The Recorder driven through the hooks the client calls (no sockets): it records
compactly, judges nothing, and holds bounded memory whatever the server sends."""
import random
import tracemalloc

import pytest

from checks import duplicates, ordering, run_checks
from checks.fold import fold
from checks.loss import lost_messages
from client.adapter import ResumeInfo, Stamp
from client.hooks import ConnectionHooks
from client.recorder import CHANNEL_CAP, STREAM_CAP, ConnectionRecorder, Recorder
from history import (
    KEY_CAP,
    LOG_BUDGET,
    LOG_CAP,
    OTHER,
    RUN_BUDGET,
    RUN_CAP,
    SEQ_ID_CAP,
    SeqSet,
    message_key,
    state_digest,
)
from tests.checks.scenario import ACKED, SOCKETPROOF, Run


def test_implements_the_client_hooks():
    names = {n for n in dir(ConnectionHooks) if not n.startswith("_")}
    assert names <= set(dir(ConnectionRecorder))


def test_clean_stream_is_one_run_per_stream():
    run = Run(SOCKETPROOF, adapter="socketproof")
    s = run.open("w1-bob-0", "bob", ("bob",))
    tab = run.open("w1-alice-0", "alice", ("alice",), t=1.0, heartbeat=(2.0, 1.0),
                   resume=ResumeInfo(requested=None, server_last=2, replay=2))
    for n in range(100):
        run.broadcast(s, "w1-bob-0", "alice", [tab], 2.0 + n * 0.01)
    tab.frame("in", "message")
    tab.frame("out", "send")
    h = run.history()
    c = h.connections[1]
    assert (c.label, c.user, c.process, c.conn_id, c.channels) == ("w1-alice-0", "alice", "w1", "W1-ALICE-0", ["alice"])
    assert (c.expect_from, c.welcome_last_seq, c.replay) == (1, 2, 2)
    assert (c.heartbeat_interval, c.heartbeat_timeout) == (2.0, 1.0)
    record = c.received["alice"]
    assert record.subscribed_at == 1.0 and record.deliveries == 100 and c.deliveries == 100
    assert record.senders["w1-bob-0"].run_list() == [(1, 100, 2.05)]
    assert record.seqs.run_list() == [(1, 100, 2.05)]
    assert c.frames_in == {"message": 1} and c.frames_out == {"send": 1}
    pub = h.published["w1-bob-0"]["alice"]
    assert pub.counters == pub.acked == SeqSet([[1, 100]]) and (pub.first_at, pub.last_at) == (2.0, 2.99)
    assert h.acked_seqs["alice"].top == 100 and h.capabilities == SOCKETPROOF and h.adapter == "socketproof"


def test_records_anomalies_without_judging_them():
    run = Run(ACKED)
    tab = run.open("t", channels=("room",))
    for n, t in ((1, 1.0), (3, 2.0), (2, 3.0), (3, 4.0), (4, 5.0)):
        tab.delivered("room", Stamp("s", "room", n, 0.5), None, None, t)
    tab.delivered("room", None, None, None, 6.0)
    record = run.history().connections[0].received["room"]
    assert record.senders["s"].run_list() == [(1, 1, 1.0), (3, 3, 2.0), (2, 4, 3.0)]
    assert record.unstamped == 1


def test_expect_from_rules():
    run = Run(SOCKETPROOF)
    fresh = run.open("a", resume=ResumeInfo(server_last=10, replay=3))
    resumed = run.open("b", resume=ResumeInfo(requested=7, server_last=10, replay=3, resumed=True))
    forgot = run.open("c", resume=ResumeInfo(requested=50, server_last=0, gap=(51, None)))
    plain = run.open("d")
    a, b, c, d = (x.h for x in (fresh, resumed, forgot, plain))
    assert (a.expect_from, b.expect_from, c.expect_from, d.expect_from) == (8, 8, 1, None)
    assert b.requested_last_seq == 7 and b.resumed is True and c.gap == [51, None]


def test_state_copy_patches_and_own_updates():
    run = Run(SOCKETPROOF)
    c = run.open("t")
    c.state("snapshot", 2, {"a": 1, "b": 2}, None, None, 1.0)
    c.state("patch", 3, None, {"b": None, "c": 3}, None, 2.0)
    c.update_sent("u1", {"d": 4}, 3.0)
    c.state("ack", 4, None, None, "u1", 3.1)
    c.state("snapshot", 4, {"a": 1, "c": 3, "d": 4}, None, None, 4.0)
    h = run.history().connections[0]
    assert h.state_runs == [["snapshot", 2, 4, 1.0, None], ["snapshot", 4, 4, 4.0, True]]
    assert h.version == 4 and h.state_digest == state_digest({"a": 1, "c": 3, "d": 4})


def test_heartbeat_intervals():
    run = Run()
    c = run.open("t")
    for t in (3.0, 5.0, 8.0, 9.0):
        c.keepalive(t)
    h = run.history().connections[0]
    assert h.pings == 4 and (h.first_ping_at, h.last_ping_at) == (3.0, 9.0)
    assert (h.ping_interval_min, h.ping_interval_max) == (1.0, 3.0)
    assert h.ping_interval_mean == pytest.approx(2.0)


def test_close_finish_and_open_at_end():
    rec = Recorder()
    a, b = rec.connection("alice", "a"), rec.connection("alice", "b")
    for c in (a, b):
        c.opened(1.0, conn_id=None, channels=(), heartbeat=None, resume=None, capabilities=frozenset({"x"}))
    a.closed(1000, "bye", "client", 5.0)
    a.closed(1006, "again", "abrupt", 6.0)  # a second report is ignored
    a.frame("in", "close")  # after the close: not a new connection
    assert not rec.history().complete
    rec.finish()
    b.closed(1000, "teardown", "client", 9.0)
    h = rec.history()
    ha, hb = h.connections
    assert (ha.close_code, ha.close_reason, ha.close_initiator, ha.closed_at) == (1000, "bye", "client", 5.0)
    assert not ha.open_at_end and hb.open_at_end and hb.closed_at == 9.0
    assert h.complete and h.capabilities == frozenset({"x"})  # learnt from the first opened
    rec.finish(complete=False)
    assert not rec.history().complete


def test_reconnect_through_the_same_hooks_is_a_new_connection():
    run = Run(ACKED)
    s = run.open("s")
    c = run.open("r", channels=("room",))
    run.broadcast(s, "s", "room", [c], 2.0)
    c.closed(1006, "", "abrupt", 3.0)
    stamp = run.broadcast(s, "s", "room", [], 3.5)
    run.deliver(c, stamp, None, 4.0)  # replayed during start-up, before Ready
    run.open("r", channels=("room",), t=4.1, hooks=c)
    first, second, _ = sorted(run.history().connections, key=lambda x: (x.label, x.opened_at))
    assert (first.closed_at, first.received["room"].senders["s"].run_list()) == (3.0, [(1, 1, 2.05)])
    assert second.received["room"].senders["s"].run_list() == [(2, 2, 4.0)]
    assert second.opened_at == 4.1 and second.open_at_end


def test_seq_ids_thin_deterministically():
    run = Run(SOCKETPROOF)
    early, late = run.open("early", channels=("u",)), run.open("late", channels=("u",))
    for seq in range(1, 2001):
        early.delivered("u", None, seq, f"s:{seq}", 1.0)
        if seq > 300:
            late.delivered("u", None, seq, f"s:{seq}", 1.0)
    e, lt = (c.received["u"] for c in run.history().connections)
    assert len(e.seq_ids) <= SEQ_ID_CAP and len(lt.seq_ids) <= SEQ_ID_CAP
    assert all(s % e.seq_id_stride == 0 for s in e.seq_ids)
    assert e.seq_id_stride & (e.seq_id_stride - 1) == 0
    common = set(e.seq_ids) & set(lt.seq_ids)
    assert len(common) >= SEQ_ID_CAP // 4 and all(e.seq_ids[s] == lt.seq_ids[s] == f"s:{s}" for s in common)


def test_history_is_a_snapshot():
    run = Run(ACKED)
    c = run.open("t", channels=("room",))
    c.delivered("room", Stamp("s", "room", 1, 0.0), None, None, 1.0)
    before = run.rec.history()
    c.delivered("room", Stamp("s", "room", 2, 0.0), None, None, 2.0)
    assert before.connections[0].received["room"].senders["s"].run_list() == [(1, 1, 1.0)]
    assert run.rec.history().connections[0].received["room"].senders["s"].run_list() == [(1, 2, 1.0)]


def test_keys_are_bounded():
    run = Run()
    c = run.open("t")
    for i in range(KEY_CAP + 10):
        c.frame("in", f"kind{i}")
        c.error(f"code{i}" * 50, 1.0)
    h = run.history().connections[0]
    assert len(h.frames_in) == KEY_CAP + 1 and h.frames_in[OTHER] == 10
    assert len(h.errors) == KEY_CAP + 1 and all(len(k) <= 64 for k in h.errors)


def test_folded_connections_keep_their_evidence():
    run = Run(ACKED, keep_closed=2)
    s = run.open("s")
    for i in range(6):
        r = run.open(f"r{i}", channels=("room",), t=1.0 + i)
        for n in range(3):
            run.broadcast(s, "s", "room", [r], 1.1 + i + n * 0.1, skip={0: {5} if i == 1 else set()})
        if i == 3:
            stamp = Stamp("s", "room", r.h.received["room"].senders["s"].runs[1], 0.0)
            run.deliver(r, stamp, None, 1.9 + i)  # a duplicate
        r.closed(1000, "", "client", 1.95 + i)
    h = run.history()
    assert len(h.connections) == 3 and h.folded.connections == 4 and h.folded.by_process == {"w1": 4}
    verdicts = {v.name: v for v in run_checks(h, ["loss", "duplicates", "ordering"])}
    (lost,) = verdicts["loss"].anomalies
    assert lost.evidence["folded"] and lost.evidence["missing"] == [[5, 5]]
    assert lost.evidence["receivers"][0]["label"] == "r1"
    (dup,) = verdicts["duplicates"].anomalies
    assert dup.kind == "duplicate_stamp" and dup.evidence["samples"][0]["label"] == "r3"
    assert verdicts["ordering"].valid is True


def test_without_a_fold_function_every_closed_connection_is_kept():
    run = Run(ACKED, keep_closed=1, fold=None)
    for i in range(3):
        run.open(f"r{i}").closed(1000, "", "client", 2.0 + i)
    h = run.history()
    assert [c.label for c in h.connections] == ["r0", "r1", "r2"] and h.folded.connections == 0


def test_the_run_budget_is_shared_by_a_connections_streams():
    run = Run(SOCKETPROOF)
    c = run.open("t", channels=("room",))
    streams = RUN_BUDGET // RUN_CAP + 1
    for s in range(streams):
        for n in range(0, 2 * RUN_CAP, 2):  # every arrival out of place: a run each
            c.delivered("room", Stamp(f"s{s}", "room", n + 1, 0.0), None, None, 1.0)
    senders = run.history().connections[0].received["room"].senders.values()
    runs = sum(len(a.runs) // 3 for a in senders)
    assert runs == RUN_BUDGET + streams  # each stream's first run is free, the rest come from the budget
    assert sum(a.overflow for a in senders) == streams * RUN_CAP - runs


MEMORY_BUDGET = 16 * 2**20
"""Above what the caps allow for 21 live + 50 kept connections (10.0 MiB peak measured;
without folding it passes 20 MiB)."""


def plant(c: ConnectionRecorder, sender: str, t: float) -> None:
    """Counters 1..10 of `sender` acked; `c` gets them with 5 missing, 3 twice, 7 after 8."""
    for n in range(1, 11):
        stamp = Stamp(sender, "room", n, t)
        c.published(stamp, t)
        c.acked(stamp, None, t)
    for n in (1, 2, 3, 3, 4, 6, 8, 7, 9, 10):
        c.delivered("room", Stamp(sender, "room", n, t), None, None, t + 0.001)


def adversarial(rec: Recorder, events: int, seed: int = 7) -> None:
    """Random seqs, made-up kinds and codes, interleaved acks of many senders, reconnects;
    planted anomalies on a connection kept open and on one that will be folded."""
    rnd = random.Random(seed)
    conns = [rec.connection(f"u{i}", f"w1-u{i}") for i in range(20)]
    kept = rec.connection("p", "w1-p")
    counters: dict = {}
    seq = 0
    t = 0.0
    for c in [*conns, kept]:
        c.opened(t, conn_id=None, channels=("room",), heartbeat=None, resume=None, capabilities=SOCKETPROOF)
    plant(kept, "planted-kept", t)
    plant(conns[0], "planted-folded", t)
    conns[0].closed(1000, "", "client", t)
    for i in range(events):
        t += 0.001
        c = rnd.choice(conns)
        roll = rnd.random()
        if roll < 0.3:
            sender = f"s{rnd.randrange(500)}"
            channel = f"ch{rnd.randrange(100)}"
            n = counters[(sender, channel)] = counters.get((sender, channel), 0) + 1
            stamp = Stamp(sender, channel, n, t)
            c.published(stamp, t)
            seq += 1
            c.acked(stamp, seq, t)
        elif roll < 0.45:  # one hot stream on the connection kept open, every arrival out of place
            kept.delivered("room", Stamp("hot", "room", rnd.randrange(1, 10**6), t), rnd.randrange(10**9), None, t)
        elif roll < 0.6:
            sender = f"s{rnd.randrange(2000)}"
            c.delivered(f"ch{rnd.randrange(1000)}", Stamp(sender, "room", rnd.randrange(1, 10**6), t),
                        rnd.randrange(10**9), None, t)
        elif roll < 0.7:
            c.frame("in", f"kind{rnd.randrange(10**6)}")
        elif roll < 0.8:
            c.error(f"code{rnd.randrange(10**6)}", t)
        elif roll < 0.85:
            c.keepalive(t)
        elif roll < 0.9:
            c.state(rnd.choice(("snapshot", "patch", "ack")), rnd.randrange(100), {"k": i}, {"p": i}, i, t)
        elif roll < 0.99:
            c.update_sent(i, {"x": i}, t)
        else:
            c.closed(1006, "", "abrupt", t)
            c.opened(t, conn_id=i, channels=("room",), heartbeat=None, resume=None, capabilities=SOCKETPROOF)


def test_memory_stays_bounded_under_100k_adversarial_events():
    rec = Recorder("w1", adapter="socketproof", capabilities=SOCKETPROOF, keep_closed=50, publish_cap=2_000,
                   fold=fold)
    tracemalloc.start()
    try:
        adversarial(rec, 100_000)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rec.finish(t=200.0)
    h = rec.history()
    print(f"recorder after 100k adversarial events: {current / 2**20:.1f} MiB held, peak {peak / 2**20:.1f} MiB")
    assert peak < MEMORY_BUDGET, f"peak {peak / 2**20:.1f} MiB"
    assert len(h.connections) <= 50 + 40 and h.folded.connections > 0
    for c in h.connections:
        assert len(c.frames_in or {}) <= KEY_CAP + 1 and len(c.errors or {}) <= KEY_CAP + 1
        assert len(c.received) <= CHANNEL_CAP
        runs = [len(a.runs) // 3 for r in c.received.values() for a in r.senders.values()]
        assert max(runs, default=0) <= RUN_CAP and sum(runs) <= RUN_BUDGET + STREAM_CAP
    assert rec._published_count <= 2_000 and h.published_overflow > 0
    for acked in h.acked_seqs.values():
        assert len(acked.seqs.ranges()) <= 256
    verdicts = {v.name: v.valid for v in run_checks(h, ["ordering", "duplicates", "loss", "state"])}
    assert verdicts == {"ordering": False, "duplicates": False, "loss": False, "state": False}
    kept = next(c for c in h.connections if c.label == "w1-p")  # the planted anomalies, found by the checks
    assert "fifo" in [a.kind for a in ordering.connection_anomalies(kept)]
    assert "duplicate_stamp" in [a.kind for a in duplicates.connection_anomalies(kept)]
    for kind in ("fifo", "duplicate_stamp"):  # the folded planted connection's evidence survived
        assert h.folded.findings[kind].items[0]["label"] == "w1-u0"
    lost = {(e.get("label"), e.get("sender"), e.get("folded", False)): e["missing"]
            for e in (a.evidence for a in lost_messages(h))}
    assert lost[("w1-p", "planted-kept", False)] == [[5, 5]]
    assert lost[(None, "planted-folded", True)] == [[5, 5]]
    assert len(h.to_json()) < MEMORY_BUDGET


def test_unstamped_deliveries_are_logged_from_the_first_one_only():
    run = Run(ACKED)
    run.open("idle", channels=("feed",))
    stamped = run.open("stamped", channels=("feed",))
    stamped.delivered("feed", Stamp("s", "feed", 1, 1.0), None, "id-1", 2.0)
    feed = run.open("feed", channels=("feed",))
    feed.delivered("feed", None, None, None, 2.0)  # no id and no body: counted, not known
    assert feed.h.received["feed"].log is None
    feed.delivered("feed", None, None, "b-1", 2.5)
    feed.delivered("feed", None, None, 7, 3.0)
    logs = {c.label: c.received["feed"] for c in run.history().connections}
    assert logs["idle"].log is None and logs["stamped"].log is None
    record = logs["feed"]
    assert record.unstamped == 3 and list(record.log.keys) == [message_key("b-1"), 7]
    assert record.log.times() == [2.5, 3.0]
    feed.closed(1000, "", "client", 4.0)
    feed.delivered("feed", None, None, "b-2", 5.0)  # the same hooks, a new connection: a new log
    assert feed.h.received["feed"].log.entries() == [(message_key("b-2"), 5.0)]


def test_logs_cost_12_bytes_a_message_within_the_cap_and_the_connections_budget():
    rec = Recorder("w1", capabilities=ACKED)
    c = rec.connection("u", "u#1")
    c.opened(0.0, conn_id=None, channels=tuple(f"ch{i}" for i in range(8)), heartbeat=None, resume=None,
             capabilities=ACKED)
    c.delivered("ch0", None, None, "first", 0.5)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(LOG_CAP - 1):
            c.delivered("ch0", None, None, n, 1.0 + n * 0.01)
        per_message = (tracemalloc.get_traced_memory()[0] - before) / (LOG_CAP - 1)
        for n in range(6 * LOG_CAP):  # 3072 on each channel: the connection's budget runs out first
            c.delivered(f"ch{n % 8}", None, None, n, 100.0 + n * 0.01)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    logs = [r.log for r in c.h.received.values() if r.log is not None]
    assert 12 <= per_message < 14, per_message
    assert max(len(log) for log in logs) == LOG_CAP and sum(len(log) for log in logs) == LOG_BUDGET
    assert sum(log.truncated for log in logs) == LOG_CAP + 6 * LOG_CAP - LOG_BUDGET
    assert held < LOG_BUDGET * 14 + 8 * 1024, held
