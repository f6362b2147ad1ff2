"""The History records and their JSON form: the wire format workers send the master."""
import json
from pathlib import Path

import pytest

from client.adapter import ResumeInfo
from history import HISTORY_VERSION, History, SeqSet, state_digest
from history.records import ConnectionHistory
from tests.checks.scenario import SOCKETPROOF, Run

GOLDEN = json.loads((Path(__file__).parent / "history_v2.json").read_text())
"""Version-2 histories as to_dict() wrote them: "full" has every field of a connection,
"folded" a merged summary of folded connections. A change here is a format change."""


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_wire_format_reads_and_writes_back_exactly(name):
    d = GOLDEN[name]
    h = History.from_dict(json.loads(json.dumps(d)))
    assert h.to_dict() == d
    assert list(h.to_dict()) == list(d)  # same keys, same order
    assert History.from_json(h.to_json()) == h


def test_every_connection_field_is_on_the_wire():
    (alice, _bob) = GOLDEN["full"]["connections"]
    assert set(alice) == set(ConnectionHistory.__dataclass_fields__)


def _full_history() -> History:
    """Every kind of field, recorded through the Recorder."""
    run = Run(SOCKETPROOF, adapter="socketproof")
    a = run.open("w1-alice-0", "alice", ("alice",), t=1.5, heartbeat=(20.0, 10.0),
                 resume=ResumeInfo(requested=2, server_last=5, replay=3, resumed=True, gap=(3, None)))
    b = run.open("w1-bob-0", "bob", ("bob",))
    for n in range(3):
        run.broadcast(b, "w1-bob-0", "alice", [a], 2.0 + n)
    run.publish(b, "w1-bob-0", "alice", 6.0, fail="queue_full")
    a.keepalive(2.0)
    a.keepalive(4.0)
    a.state("snapshot", 2, {"a": 1}, None, None, 2.0)
    a.update_sent("u1", {"b": 2}, 2.5)
    a.state("ack", 3, None, None, "u1", 2.6)
    a.frame("in", "message")
    a.error("queue_full", 3.0)
    a.closed(1000, "bye", "client", 9.0)
    run.rec.server_stats_before = run.rec.server_stats_after = {"connections": 0}
    run.rec.server_connections_before, run.rec.server_connections_after = 3, 3
    run.rec.server_connections_source = "http://127.0.0.1:1/metrics#open"
    return run.history()


def test_the_recorder_writes_the_documented_format():
    assert _full_history().to_dict() == GOLDEN["full"]


def test_history_json_round_trip():
    h = _full_history()
    text = h.to_json()
    back = History.from_json(text)
    assert back == h
    alice = back.connections[0]
    assert alice.received["alice"].senders["w1-bob-0"].run_list() == [(1, 3, 2.05)]
    assert alice.received["alice"].seq_ids == {1: "w1-bob-0:1", 2: "w1-bob-0:2", 3: "w1-bob-0:3"}
    assert alice.gap == [3, None] and alice.expect_from == 3 and alice.version == 3
    assert back.published["w1-bob-0"]["alice"].failed == SeqSet([[4, 4]])
    assert back.capabilities == SOCKETPROOF and back.adapter == "socketproof"
    assert back.to_json() == text


def test_copy_is_deep():
    h = _full_history()
    c = h.connections[0]
    copy = c.copy()
    assert copy == c
    copy.received["alice"].senders["w1-bob-0"].add(9, 9.0)
    copy.state_runs[0][2] = 99
    assert c.received["alice"].senders["w1-bob-0"].run_list() == [(1, 3, 2.05)] and c.state_runs[0][2] == 3


def test_history_refuses_other_versions():
    d = _full_history().to_dict()
    for version in (1, HISTORY_VERSION + 1, None):
        d["version"] = version
        with pytest.raises(ValueError, match="not supported"):
            History.from_dict(d)
    with pytest.raises(ValueError, match="cannot merge"):
        History(version=1).merge(History())


def test_merge_unions_everything():
    a = _full_history()
    run = Run(SOCKETPROOF - {"resume"}, adapter="socketproof", process="w2")
    bob2 = run.open("w2-bob-0", "bob", ("bob",))
    run.counters[("w1-bob-0", "alice")] = 4  # the same sender label published on both workers
    run.seqs["alice"] = 4
    run.publish(bob2, "w1-bob-0", "alice", 7.0)
    run.rec.server_stats_after = {"connections": 3}
    b = run.history(end=12.0)
    b.started_at = 0.5
    m = a.merge(b)
    assert (m.started_at, m.ended_at, m.complete) == (0.0, 12.0, True)
    assert [c.label for c in m.connections] == ["w1-alice-0", "w1-bob-0", "w2-bob-0"]
    assert m.published["w1-bob-0"]["alice"].acked == SeqSet([[1, 3], [5, 5]])
    assert m.acked_seqs["alice"].top == 5 and m.acked_seqs["alice"].count == 4
    assert m.capabilities == SOCKETPROOF - {"resume"}  # only what every part had
    assert m.server_stats_after == {"connections": 0}  # self's wins when both have one
    assert m.server_connections_source == "http://127.0.0.1:1/metrics#open"
    assert a.published["w1-bob-0"]["alice"].acked == SeqSet([[1, 3]])  # operands unchanged
    assert not a.merge(History(complete=False)).complete
    assert History(complete=True).merge(a).capabilities == SOCKETPROOF  # an empty part knows nothing


def test_merge_of_folded_parts_needs_no_checker():
    folded = History.from_dict(GOLDEN["folded"])
    twice = folded.merge(folded)
    assert twice.folded.connections == 2 * folded.folded.connections
    assert twice.folded.holes == folded.folded.holes  # a union: the same holes once
    assert twice.folded.hole_receivers.total == 2 * folded.folded.hole_receivers.total


def test_state_digest_ignores_key_order():
    assert state_digest({"a": 1, "b": [1, 2]}) == state_digest({"b": [1, 2], "a": 1})
    assert state_digest({"a": 1}) != state_digest({"a": 2})
