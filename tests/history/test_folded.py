"""The folded-connections summary: what a fold function writes, its caps, and its merge
(structural: no checker runs when workers' summaries meet on the master)."""
from history.folded import FOLD_HEARTBEAT, FOLD_KEYS, FOLD_MEANS, FOLD_PROCESSES, Folded
from history.ranges import SAMPLE_CAP, SeqSet


def test_empty_summary_round_trips():
    assert Folded.from_dict(None) == Folded() == Folded.from_dict(Folded().to_dict())


def test_connections_are_counted_per_process_within_the_cap():
    f = Folded()
    for i in range(FOLD_PROCESSES + 3):
        f.add_connection(f"w{i}", deliveries=2)
    f.add_connection("w0", deliveries=1)
    assert f.connections == FOLD_PROCESSES + 4 and f.deliveries == 2 * (FOLD_PROCESSES + 3) + 1
    assert len(f.by_process) == FOLD_PROCESSES and f.by_process["w0"] == 2


def test_findings_keep_samples_and_the_true_count():
    f = Folded()
    for i in range(SAMPLE_CAP + 4):
        f.add_finding("fifo", {"label": f"c{i}"})
    assert f.findings["fifo"].total == SAMPLE_CAP + 4 and len(f.findings["fifo"].items) == SAMPLE_CAP


def test_holes_union_per_sender_and_channel_and_overflow_beyond_the_key_cap():
    f = Folded()
    f.add_holes("s", "room", SeqSet([[2, 2]]))
    f.add_holes("s", "room", SeqSet([[3, 4]]))
    assert f.holes == {"s": {"room": SeqSet([[2, 4]])}}
    for i in range(FOLD_KEYS):
        f.add_holes(f"s{i}", "room", SeqSet([[1, 1]]))
    assert sum(len(chs) for chs in f.holes.values()) == FOLD_KEYS and f.overflow == 1


def test_channel_seqs_keep_the_top_and_the_widest_span():
    f = Folded()
    f.add_channel_seqs("u", {"top": 5, "opened_at": 2.0, "closed_at": 3.0})
    f.add_channel_seqs("u", {"top": 9, "opened_at": 1.0, "closed_at": None})
    f.add_channel_seqs("u", {"top": 7, "opened_at": 4.0, "closed_at": 2.5})
    assert f.channel_seqs == {"u": {"top": 9, "opened_at": 1.0, "closed_at": 3.0}}


def test_heartbeat_keeps_the_highest_scores_and_means_are_capped():
    f = Folded()
    f.add_heartbeat([{"label": f"c{i}", "score": float(i)} for i in range(FOLD_HEARTBEAT + 5)])
    assert len(f.heartbeat) == FOLD_HEARTBEAT and f.heartbeat[0]["label"] == f"c{FOLD_HEARTBEAT + 4}"
    assert f.overflow == 0  # dropping the regular ones is the design, not an overflow
    f.add_ping_means([1.0] * (FOLD_MEANS + 10))
    assert len(f.ping_means) == FOLD_MEANS


def _part(process: str, holes: list, top: int) -> Folded:
    f = Folded()
    f.add_connection(process, deliveries=3)
    f.add_finding("lost", {"label": f"{process}-r"})
    f.add_holes("s", "room", SeqSet(holes))
    f.hole_receivers.add({"label": f"{process}-r", "sender": "s", "channel": "room"})
    f.add_channel_seqs("u", {"top": top, "opened_at": 1.0, "closed_at": 2.0})
    f.add_heartbeat([{"label": f"{process}-r", "score": float(top)}])
    f.add_ping_means([float(top)])
    return f


def test_merge_is_a_union_and_leaves_its_operands():
    a, b = _part("w1", [[2, 2]], 5), _part("w2", [[3, 3], [9, 9]], 8)
    before = a.to_dict()
    m = a.merge(b)
    assert a.to_dict() == before
    assert (m.connections, m.by_process, m.deliveries) == (2, {"w1": 1, "w2": 1}, 6)
    assert m.findings["lost"].total == 2 and m.hole_receivers.total == 2
    assert m.holes["s"]["room"] == SeqSet([[2, 3], [9, 9]])
    assert m.channel_seqs["u"]["top"] == 8
    assert [h["label"] for h in m.heartbeat] == ["w2-r", "w1-r"] and m.ping_means == [5.0, 8.0]
    assert Folded.from_dict(m.to_dict()) == m
