"""client/framing.py gives what wsproto gives, byte for byte and message for message.

FrameDecoder skips wsproto for final unmasked text frames and masked_text_frame builds
text frames itself (both for speed); each must agree with wsproto on any split of the
byte stream, and refuse what wsproto refuses with the close code RFC 6455 names.
"""

from __future__ import annotations

import os
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from client.framing import (
    BINARY,
    CLOSE,
    MAX_FRAGMENTS,
    PING,
    PONG,
    TEXT,
    FrameDecoder,
    FrameEncoder,
    FramingError,
    masked_text_frame,
)

CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def server_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None, width: int = 0
) -> bytes:
    """A frame as a server (or a misbehaving one) writes it; `width` forces a 2- or 8-byte length."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask is not None else 0
    if width == 0 and n < 126:
        head += bytes([bit | n])
    elif width in (0, 2) and n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


Outcome = tuple[list[tuple[str, object]], "int | None"]


def wsproto_outcome(stream: bytes) -> Outcome:
    """Messages wsproto (client side) makes of the whole stream, up to the first close,
    and the close code of the error it stops at (None: no error)."""
    proto = FrameProtocol(client=True, extensions=[])
    proto.receive_bytes(stream)
    out: list[tuple[str, object]] = []
    parts: list[str | bytes] = []
    kind = TEXT
    try:
        for f in proto.received_frames():
            if f.opcode is Opcode.PING:
                out.append((PING, bytes(f.payload)))  # type: ignore[arg-type]
            elif f.opcode is Opcode.PONG:
                out.append((PONG, bytes(f.payload)))  # type: ignore[arg-type]
            elif f.opcode is Opcode.CLOSE:
                code, reason = f.payload  # type: ignore[misc]
                out.append((CLOSE, (None if code == CloseReason.NO_STATUS_RCVD else int(code), reason)))
                return out, None
            else:
                if f.opcode is not Opcode.CONTINUATION:
                    kind = TEXT if f.opcode is Opcode.TEXT else BINARY
                parts.append(f.payload)  # type: ignore[arg-type]
                if f.message_finished:
                    out.append((kind, "".join(parts) if kind == TEXT else b"".join(parts)))  # type: ignore[arg-type]
                    parts = []
    except ParseFailed as error:
        return out, int(error.code)
    return out, None


def decoder_outcome(stream: bytes, cuts: list[int], max_message_bytes: int = 64 * 1024 * 1024) -> Outcome:
    """FrameDecoder fed the stream in pieces cut at `cuts`, up to the first close (what the
    transport reads: it stops at a close frame)."""
    decoder = FrameDecoder(max_message_bytes)
    out: list[tuple[str, object]] = []
    for piece in split(stream, cuts):
        try:
            got = decoder.feed(piece)
        except FramingError as error:
            out += error.messages
            closed = any(kind == CLOSE for kind, _ in out)  # the transport stops reading at a close
            return until_close(out), None if closed else error.code
        out += got
        if any(kind == CLOSE for kind, _ in out):
            break
    return until_close(out), None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at each of `cuts` (out-of-range cuts ignored): the pieces may be empty."""
    bounds = [0, *sorted(c for c in cuts if 0 <= c <= len(data)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def until_close(messages: list[tuple[str, object]]) -> list[tuple[str, object]]:
    for i, (kind, _) in enumerate(messages):
        if kind == CLOSE:
            return messages[: i + 1]
    return messages


# -- well-formed streams: fragments, control frames between them, close -----------------

CLOSE_CODES = st.sampled_from([1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999])


@st.composite
def server_streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, object]]]:
    """A stream of valid server frames and the messages it stands for."""
    frames: list[bytes] = []
    expected: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([TEXT, TEXT, BINARY, PING, PONG]))
        if kind in (PING, PONG):
            payload = draw(st.binary(max_size=125))
            frames.append(server_frame(OP_PING if kind == PING else OP_PONG, payload))
            expected.append((kind, payload))
            continue
        if kind == TEXT:
            text = draw(st.text(max_size=300))
            data, opcode, message = text.encode(), OP_TEXT, text
        else:
            data = draw(st.binary(max_size=300) | st.just(bytes(range(256)) * 300))
            opcode, message = OP_BINARY, data  # type: ignore[assignment]
        cuts = draw(st.lists(st.integers(0, len(data)), max_size=3))  # may split a UTF-8 sequence
        pieces = split(data, cuts)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            frames.append(server_frame(opcode if i == 0 else CONT, piece, fin=last))
            if not last and draw(st.booleans()):  # control frames may come between fragments
                ping = draw(st.binary(max_size=8))
                frames.append(server_frame(OP_PING, ping))
                expected.append((PING, ping))
        expected.append((kind, message))
    ending = draw(st.sampled_from(["none", "empty", "code"]))
    if ending == "empty":
        frames.append(server_frame(OP_CLOSE, b""))
        expected.append((CLOSE, (None, "")))
    elif ending == "code":
        code, reason = draw(CLOSE_CODES), draw(st.text(max_size=30))
        frames.append(server_frame(OP_CLOSE, close_payload(code, reason)))
        expected.append((CLOSE, (code, reason)))
    return b"".join(frames), expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(server_streams(), st.data())
def test_decoder_gives_wsproto_messages_on_any_split(stream_and_expected: tuple, data: st.DataObject) -> None:
    stream, expected = stream_and_expected
    one_by_one = st.just(list(range(len(stream)))) if len(stream) < 5000 else st.nothing()
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8) | one_by_one)
    reference = wsproto_outcome(stream)
    assert reference == (expected, None)
    assert decoder_outcome(stream, cuts) == reference


# -- any stream of frames: the decoder refuses what wsproto refuses, with its code --------

FIRST_BYTES = st.sampled_from([0x81, 0x81, 0x82, 0x01, 0x00, 0x80, 0x89, 0x8A, 0x88, 0xC1, 0xA1, 0x91, 0x83, 0x8B,
                               0x09, 0x02])


@st.composite
def any_frames(draw: st.DrawFn) -> bytes:
    """Whole frames with any header bits: reserved opcodes, RSV bits, masks, non-minimal lengths."""
    frames = []
    for _ in range(draw(st.integers(1, 5))):
        first = draw(FIRST_BYTES)
        payload = draw(st.binary(max_size=140) | st.text(max_size=40).map(str.encode) | st.just(b"\xc3\x28"))
        mask = b"\x01\x02\x03\x04" if draw(st.integers(0, 9)) == 0 else None
        width = draw(st.sampled_from([0, 0, 0, 2, 8]))
        frames.append(server_frame(first & 0x0F, payload, fin=bool(first & 0x80), rsv=first >> 4 & 7,
                                   mask=mask, width=width))
    return b"".join(frames)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_frames(), st.lists(st.integers(0, 2000), max_size=6))
def test_decoder_fails_where_wsproto_fails_with_the_same_code(stream: bytes, cuts: list[int]) -> None:
    assert decoder_outcome(stream, cuts) == wsproto_outcome(stream)


# -- masked text frames ---------------------------------------------------------------------


def text_of(size: int) -> str:
    """`size` UTF-8 bytes of text, two-byte characters included."""
    wide = size // 4
    return "ż" * wide + "x" * (size - 2 * wide)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70001])
def test_masked_text_frame_decodes_with_wsproto_as_the_server(size: int) -> None:
    text = text_of(size)
    assert len(text.encode()) == size
    server = FrameProtocol(client=False, extensions=[])  # a server insists on masked frames
    frame = masked_text_frame(text)
    server.receive_bytes(frame)
    (received,) = list(server.received_frames())
    assert (received.opcode, received.payload, received.message_finished) == (Opcode.TEXT, text, True)
    header = 2 + (0 if size < 126 else 2 if size < 65536 else 8)
    assert len(frame) == header + 4 + size  # nothing after the frame


@pytest.mark.parametrize("size", [0, 1, 3, 125, 126, 65535, 65536])
def test_masked_text_frame_is_the_frame_wsproto_builds_with_the_same_key(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = os.urandom(4)
    text = text_of(size)
    import wsproto.frame_protocol

    monkeypatch.setattr(wsproto.frame_protocol.os, "urandom", lambda n: key)
    expected = bytes(FrameProtocol(client=True, extensions=[]).send_data(text, True))
    assert masked_text_frame(text, lambda n: key) == expected


def test_masked_text_frame_takes_a_fresh_key_for_every_frame() -> None:
    asked: list[int] = []

    def urandom(n: int) -> bytes:
        asked.append(n)
        return os.urandom(n)

    keys = {masked_text_frame("same", urandom)[2:6] for _ in range(20)}
    assert asked == [4] * 20
    assert len(keys) > 1
    assert len({masked_text_frame("same") for _ in range(20)}) > 1  # the default key source too


def test_encoder_frames_decode_with_wsproto_as_the_server() -> None:
    encoder = FrameEncoder()
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(encoder.text("hi") + encoder.binary(b"\x00\xff") + encoder.ping(b"p") + encoder.pong(b"q")
                         + encoder.close(1001, "bye"))
    got = [(f.opcode, f.payload) for f in server.received_frames()]
    assert got == [(Opcode.TEXT, "hi"), (Opcode.BINARY, b"\x00\xff"), (Opcode.PING, b"p"), (Opcode.PONG, b"q"),
                   (Opcode.CLOSE, (CloseReason.GOING_AWAY, "bye"))]
    server = FrameProtocol(client=False, extensions=[])
    server.receive_bytes(encoder.close(None))
    ((f),) = list(server.received_frames())
    assert f.payload == (CloseReason.NO_STATUS_RCVD, "")


# -- bad frames, each with its close code ---------------------------------------------------

BAD_FRAMES = {
    "rsv1 on a text frame": (server_frame(OP_TEXT, b"{}", rsv=4), 1002),
    "rsv3 on a binary frame": (server_frame(OP_BINARY, b"x", rsv=1), 1002),
    "reserved opcode 3": (server_frame(0x3, b""), 1002),
    "reserved control opcode 0xB": (server_frame(0xB, b""), 1002),
    "1-byte close payload": (server_frame(OP_CLOSE, b"\x03"), 1002),
    "close code 1005 on the wire": (server_frame(OP_CLOSE, close_payload(1005)), 1002),
    "masked server frame": (server_frame(OP_TEXT, b"{}", mask=b"\x01\x02\x03\x04"), 1002),
    "fragmented ping": (server_frame(OP_PING, b"p", fin=False), 1002),
    "ping over 125 bytes": (server_frame(OP_PING, b"p" * 126), 1002),
    "continuation with nothing to continue": (server_frame(CONT, b"x"), 1002),
    "a new text frame inside a fragmented one": (server_frame(OP_TEXT, b"a", fin=False)
                                                 + server_frame(OP_TEXT, b"b"), 1002),
    "length in 2 bytes when 1 would do": (server_frame(OP_TEXT, b"{}", width=2), 1002),
    "length in 8 bytes when 2 would do": (server_frame(OP_TEXT, b"x" * 200, width=8), 1002),
    "invalid UTF-8 in a fast-path text frame": (server_frame(OP_TEXT, b"\xc3\x28"), 1007),
    "invalid UTF-8 across fragments": (server_frame(OP_TEXT, b"ok\xc3", fin=False)
                                       + server_frame(CONT, b"\x28"), 1007),
    "a UTF-8 sequence left unfinished": (server_frame(OP_TEXT, b"ok\xc3", fin=False) + server_frame(CONT, b""), 1007),
    "invalid UTF-8 in a close reason": (server_frame(OP_CLOSE, close_payload(1000) + b"\xff"), 1007),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_frames_raise_framing_error_with_their_close_code(name: str) -> None:
    frame, code = BAD_FRAMES[name]
    for cuts in ([], list(range(len(frame)))):  # whole, and one byte at a time
        with pytest.raises(FramingError) as caught:
            decoder_outcome_raising(frame, cuts)
        assert caught.value.code == code, name
        assert str(caught.value).startswith(f"{code}: ")
    assert wsproto_outcome(frame)[1] == code  # what wsproto says too


def decoder_outcome_raising(stream: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    for piece in split(stream, cuts):
        decoder.feed(piece)


def test_a_frame_over_max_message_bytes_is_1009_before_its_payload_arrives() -> None:
    decoder = FrameDecoder(max_message_bytes=100)
    assert decoder.feed(server_frame(OP_TEXT, b"x" * 100)) == [(TEXT, "x" * 100)]  # at the limit: fine
    with pytest.raises(FramingError) as caught:
        decoder.feed(server_frame(OP_BINARY, b"y" * 101)[:4])  # the header is enough to know
    assert caught.value.code == 1009
    with pytest.raises(FramingError) as caught:
        FrameDecoder(max_message_bytes=70000).feed(server_frame(OP_TEXT, b"z" * 70001)[:10])
    assert caught.value.code == 1009


def test_a_fragmented_message_over_max_message_bytes_is_1009() -> None:
    decoder = FrameDecoder(max_message_bytes=100)
    assert decoder.feed(server_frame(OP_TEXT, b"a" * 60, fin=False)) == []
    with pytest.raises(FramingError) as caught:
        decoder.feed(server_frame(CONT, b"b" * 60))
    assert caught.value.code == 1009


def test_messages_before_a_bad_frame_are_kept_on_the_error() -> None:
    stream = server_frame(OP_TEXT, b'{"a":1}') + server_frame(OP_PING, b"p") + server_frame(OP_TEXT, b"\xff")
    with pytest.raises(FramingError) as caught:
        FrameDecoder().feed(stream)
    assert caught.value.code == 1007
    assert caught.value.messages == [(TEXT, '{"a":1}'), (PING, b"p")]


def test_close_frames_give_code_and_reason() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(server_frame(OP_CLOSE, close_payload(4000, "żegnaj"))) == [(CLOSE, (4000, "żegnaj"))]
    assert FrameDecoder().feed(server_frame(OP_CLOSE, b"")) == [(CLOSE, (None, ""))]


def test_a_fragmented_message_is_counted_as_a_running_total_that_starts_again_with_each_message() -> None:
    decoder = FrameDecoder(max_message_bytes=100)
    at_limit = (server_frame(OP_TEXT, b"a" * 40, fin=False) + server_frame(CONT, b"b" * 40, fin=False)
                + server_frame(CONT, b"c" * 20))
    for _ in range(2):  # the second message is not charged for the first
        assert decoder.feed(at_limit) == [(TEXT, "a" * 40 + "b" * 40 + "c" * 20)]
    with pytest.raises(FramingError) as caught:
        decoder.feed(server_frame(OP_BINARY, b"x" * 50, fin=False) + server_frame(CONT, b"y" * 51))
    assert (caught.value.code, caught.value.reason) == (1009, "a message over the limit of 100 bytes")


def test_a_message_in_more_fragments_than_max_fragments_is_1009() -> None:
    decoder = FrameDecoder(max_fragments=4)
    four = b"".join(server_frame(OP_BINARY if i == 0 else CONT, str(i).encode(), fin=i == 3) for i in range(4))
    for _ in range(2):  # at the limit, and the count starts again with the next message
        assert decoder.feed(four) == [(BINARY, b"0123")]
    empty = server_frame(OP_TEXT, b"", fin=False) + server_frame(CONT, b"", fin=False) * 4  # no bytes, 5 fragments
    with pytest.raises(FramingError) as caught:
        decoder.feed(empty)
    assert (caught.value.code, caught.value.reason) == (1009, "a message in over 4 fragments")
    endless = server_frame(OP_BINARY, b"", fin=False) + server_frame(CONT, b"", fin=False) * MAX_FRAGMENTS
    with pytest.raises(FramingError) as caught:  # the default bound: empty fragments never reach the byte cap
        FrameDecoder().feed(endless)
    assert caught.value.reason == f"a message in over {MAX_FRAGMENTS} fragments"


def test_16k_one_byte_fragments_cost_well_under_a_second_of_cpu() -> None:
    """Issue 24, finding 5: summing every fragment on each new one made this 48 KiB take ~5 s."""
    count = 16 * 1024
    stream = server_frame(OP_TEXT, b"a", fin=False) + server_frame(CONT, b"b", fin=False) * (count - 2)
    stream += server_frame(CONT, b"c")
    cpu = time.process_time()
    assert FrameDecoder().feed(stream) == [(TEXT, "a" + "b" * (count - 2) + "c")]
    cpu = time.process_time() - cpu
    assert cpu < 0.5, f"{cpu:.2f}s"
