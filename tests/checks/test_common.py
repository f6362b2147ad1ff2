"""The checkers' shared helpers (checks._common), over hand-built histories: connection
references, capability reasons, seq views, server eras, ranges."""
from checks._common import by_user, clip, count, end_of, eras, folded_anomaly, lacks, ref, seq_views, subtract
from history import Arrivals, ChannelRecord, ConnectionHistory, History, Samples


def conn(label, user="u", opened=0.0, closed=None, at_end=False, channels=(), last=None, seqs=None, ids=None):
    c = ConnectionHistory(label, user, opened_at=opened, closed_at=closed, open_at_end=at_end,
                          channels=list(channels), welcome_last_seq=last)
    if seqs is not None:
        a = Arrivals(seqs[0], opened)
        for s in seqs[1:]:
            a.add(s, opened)
        c.received["u"] = ChannelRecord(seqs=a, seq_ids=dict(ids or {}))
    return c


def test_ref_names_a_connection():
    c = ConnectionHistory("a#1", "alice", process="w1", conn_id="c7")
    assert ref(c) == {"user": "alice", "label": "a#1", "conn_id": "c7", "process": "w1"}


def test_lacks_says_why_a_capability_is_missing():
    assert lacks(History(), "server_seq", "seqs") == "the history does not say whether its adapter has seqs"
    assert lacks(History(adapter="x", capabilities=frozenset()), "server_seq", "seqs") == "the x adapter has no seqs"
    assert lacks(History(capabilities=frozenset({"server_seq"})), "server_seq", "seqs") is None


def test_folded_anomaly_carries_the_samples_and_count():
    a = folded_anomaly("fifo", Samples(3, [{"label": "c"}]), "got messages out of order")
    assert (a.kind, a.message) == ("fifo", "3 folded connection(s) got messages out of order")
    assert a.evidence == {"folded": True, "count": 3, "samples": [{"label": "c"}]}


def test_by_user_orders_each_users_connections_by_opening():
    h = History(connections=[conn("b2", "bob", 2.0), conn("a", "alice", None), conn("b1", "bob", 1.0)])
    assert {u: [c.label for c in cs] for u, cs in by_user(h).items()} == {"bob": ["b1", "b2"], "alice": ["a"]}


def test_seq_views_take_the_resume_offset_on_implicit_channels_only_and_add_the_folded_summary():
    implicit = conn("i", opened=1.0, channels=("u",), last=4, seqs=[5, 6])
    subscribed = conn("s", opened=2.0, last=4, seqs=[7])
    h = History(connections=[subscribed, implicit])
    h.folded.channel_seqs["u"] = {"top": 3, "opened_at": 0.5, "closed_at": 0.9}
    views = seq_views(h)["u"]
    assert [(v.conn.label if v.conn else None, v.server_last, v.last_seq) for v in views] == [
        (None, None, 3), ("i", 4, 6), ("s", None, 7)]


def test_a_new_era_starts_after_everyone_left_and_the_offset_went_back():
    first = conn("a", opened=1.0, closed=2.0, channels=("u",), last=0, seqs=[1, 2, 3])
    back = conn("b", opened=3.0, closed=4.0, channels=("u",), last=0, seqs=[1])
    views = seq_views(History(connections=[first, back]))["u"]
    assert [[v.conn.label for v in era] for era in eras(views)] == [["a"], ["b"]]


def test_no_new_era_while_a_connection_was_open():
    first = conn("a", opened=1.0, closed=None, channels=("u",), last=0, seqs=[1, 2, 3])
    back = conn("b", opened=3.0, closed=4.0, channels=("u",), last=0, seqs=[1])
    views = seq_views(History(connections=[first, back]))["u"]
    assert len(eras(views)) == 1


def test_a_new_era_when_a_seq_carries_another_message():
    first = conn("a", opened=1.0, closed=2.0, channels=("u",), last=0, seqs=[1, 2], ids={1: "m1", 2: "m2"})
    later = conn("b", opened=3.0, closed=4.0, channels=("u",), last=5, seqs=[6], ids={2: "other"})
    same = conn("c", opened=5.0, closed=6.0, channels=("u",), last=6, seqs=[7], ids={2: "other"})
    views = seq_views(History(connections=[first, later, same]))["u"]
    assert [[v.conn.label for v in era] for era in eras(views)] == [["a"], ["b", "c"]]


def test_end_of_is_the_close_or_the_end_of_the_run():
    h = History(ended_at=9.0)
    assert end_of(conn("a", closed=3.0), h) == 3.0
    assert end_of(conn("b", closed=10.0, at_end=True), h) == 9.0
    assert end_of(conn("c"), h) is None


def test_subtract_removes_the_announced_gap():
    assert subtract([[1, 10]], None) == ([[1, 10]], 0)
    assert subtract([[1, 10]], [4, 6]) == ([[1, 3], [7, 10]], 3)
    assert subtract([[1, 3], [8, 10]], [5, None]) == ([[1, 3]], 3)
    assert subtract([[1, 3]], [None, None]) == ([[1, 3]], 0)


def test_count_and_clip():
    assert count([[1, 3], [7, 7]]) == 4 and count([]) == 0
    assert clip([[i, i] for i in range(30)]) == [[i, i] for i in range(20)]
    assert clip([[1, 1], [3, 3]], 1) == [[1, 1]]
