"""fragment.py: `fragment=BYTES`, pure and through a live relay."""

from __future__ import annotations

import random

import pytest
from wsproto.events import BytesMessage, TextMessage

from socketproof.proxy import FaultProxy
from socketproof.proxy.faults import FaultSpecError, Message, parse_spec
from socketproof.proxy.faults.fragment import Fragment
from tests.socketproof.proxy.faults.support import batch, round_trip
from tests.socketproof.proxy.peers import FrameClient, FrameServer, Record, wait_until

TEXT = "héllo wörld, ✓ ünïcode " * 4


def messages(records: list[Record]) -> int:
    """Whole data messages among the frames recorded."""
    return sum(1 for record in records if record[0] in ("text", "binary") and record[2])


def test_cuts_a_message_into_pieces_of_at_most_n_bytes_anywhere() -> None:
    fragment = Fragment(("down",), 1.0, random.Random(1), most=3)
    [(out, due)] = fragment.apply("down", batch(TEXT, now=7.0), 7.0)
    assert due == 7.0 and out.text and all(isinstance(piece, bytes) for piece in out.chunks)
    assert b"".join(out.chunks).decode() == TEXT  # type: ignore[arg-type]
    assert {len(piece) for piece in out.chunks} == {1, 2, 3}
    undecodable = 0
    for piece in out.chunks:
        try:
            piece.decode()  # type: ignore[union-attr]
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable, "some cut falls inside a character"
    assert fragment.count == 1 and fragment.tally == {"down:fragment": 1}


def test_binary_stays_binary_and_a_fragmented_message_is_cut_again() -> None:
    fragment = Fragment(probability=1.0, rng=random.Random(2), most=4)
    [(out, _)] = fragment.apply("up", [(Message(False, (b"abcdef", b"ghij")), 0.0)], 0.0)
    assert not out.text and b"".join(out.chunks) == b"abcdefghij"  # type: ignore[arg-type]
    assert all(1 <= len(piece) <= 4 for piece in out.chunks)


def test_what_cannot_be_cut_or_was_not_chosen_goes_out_as_it_came() -> None:
    fragment = Fragment(probability=1.0, most=100)
    one, empty, short = Message(True, ("x",)), Message(False, (b"",)), Message(True, ("ab",))
    assert fragment.apply("up", [(one, 0.0), (empty, 0.0)], 0.0) == [(one, 0.0), (empty, 0.0)]
    never = Fragment(probability=0.0, most=1)
    assert never.apply("up", [(short, 0.0)], 0.0) == [(short, 0.0)] and never.count == 0
    single = Fragment(probability=1.0, rng=random.Random(3), most=100)
    outs = [single.apply("up", [(short, 0.0)], 0.0)[0][0] for _ in range(50)]
    assert sum(out is short for out in outs) == 50 - single.count > 0  # stayed one frame: not counted


def test_the_seed_decides_the_cuts() -> None:
    def cuts(seed: int) -> tuple[bytes, ...]:
        return Fragment(probability=1.0, rng=random.Random(seed), most=5).cut(Message(True, (TEXT,)))

    assert cuts(4) == cuts(4) and cuts(4) != cuts(5)


def test_spec() -> None:
    assert round_trip("down:fragment=16") == "down:fragment=16"
    assert round_trip("fragment=1@0.5") == "fragment=1@0.5"
    setting = parse_spec("fragment=8").settings[0]
    assert dict(setting.params) == {"most": 8} and parse_spec("fragment=8").data_faults_on


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fragment", "fault 'fragment' needs a value: fragment takes fragment=BYTES"),
        ("fragment=0", "count in 'fragment=0' must be at least 1, got 0"),
        ("fragment=1.5", "bad count '1.5' in 'fragment=1.5'"),
    ],
)
def test_spec_rejects(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_spec(text)
    assert message in str(caught.value)


def test_through_the_relay_the_peer_gets_the_same_messages_in_more_frames() -> None:
    with FrameServer() as server, FaultProxy(server.url, "up:fragment=4", seed=1) as proxy:
        client = FrameClient(proxy.url)
        client.send(TextMessage(TEXT))
        client.send(BytesMessage(bytes(range(40))))
        wait_until(lambda: bool(server.connections) and messages(server.connections[0].records) == 2)
        frames = server.connections[0].records
        texts = [frame for frame in frames if frame[0] == "text"]
        binaries = [frame for frame in frames if frame[0] == "binary"]
        assert "".join(frame[1] for frame in texts) == TEXT and len(texts) > len(TEXT.encode()) // 4
        assert b"".join(frame[1] for frame in binaries) == bytes(range(40)) and len(binaries) >= 10
        assert [frame[2] for frame in texts].count(True) == 1 and texts[-1][2]
        counts = proxy.counts()
        client.close()
    assert counts["faults"] == {"up:fragment": 2}
