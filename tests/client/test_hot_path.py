"""The per-message helpers of the connection module do what websocket-client and json do.

The receive loop parses frames itself (client.connection._FrameReader), builds text frames
itself (_text_frame) and shortcuts json (_dumps/_loads) for speed; each must give the
same result as the library path it replaces, on any split of the byte stream.
"""

from __future__ import annotations

import json
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websocket import ABNF, WebSocketProtocolException, WebSocketTimeoutException

import client.connection as connection
from client.connection import _dumps, _FrameReader, _loads, _text_frame


def server_frame(opcode: int, payload: bytes, *, fin: int = 1, rsv: int = 0, mask: bytes | None = None) -> bytes:
    """A frame as a server (or a misbehaving one) would write it."""
    n = len(payload)
    head = bytes([fin << 7 | rsv << 4 | opcode])
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        return head + mask + ABNF.mask(mask, payload)
    return head + payload


class Feed:
    """recv(n) over a byte string in fixed chunks, with a timeout before each chunk."""

    def __init__(self, data: bytes, chunks: list[int], timeouts: bool) -> None:
        self.data, self.chunks, self.timeouts, self.pos, self.i = data, chunks, timeouts, 0, 0
        self.timed_out = False

    def recv(self, n: int) -> bytes:
        if self.timeouts and not self.timed_out:
            self.timed_out = True
            raise WebSocketTimeoutException("timed out")
        self.timed_out = False
        if self.pos >= len(self.data):
            raise EOFError
        size = min(n, self.chunks[self.i % len(self.chunks)])
        self.i += 1
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out


def read_all(reader: _FrameReader, count: int) -> list[object]:
    out: list[object] = []
    while len(out) < count:
        try:
            out.append(reader.read())
        except WebSocketTimeoutException:
            continue
    return out


@pytest.mark.parametrize("chunks", [[1], [2, 3], [7], [16384]])
@pytest.mark.parametrize("timeouts", [False, True])
def test_reader_gives_text_payloads_and_other_frames_as_abnf(chunks: list[int], timeouts: bool) -> None:
    texts = [b'{"type":"echo","id":1}', b"x" * 126, b"y" * 70000, "żółw".encode()]
    stream = b"".join(server_frame(ABNF.OPCODE_TEXT, t) for t in texts)
    stream += server_frame(ABNF.OPCODE_PING, b"hb")
    stream += server_frame(ABNF.OPCODE_TEXT, b"masked", mask=b"\x01\x02\x03\x04")
    stream += server_frame(ABNF.OPCODE_TEXT, b"part", fin=0) + server_frame(ABNF.OPCODE_CONT, b"two")
    stream += server_frame(ABNF.OPCODE_CLOSE, struct.pack("!H", 1000))
    feed = Feed(stream, chunks, timeouts)
    reader = _FrameReader(feed.recv)
    got = read_all(reader, 9)
    assert got[:4] == texts
    rest = got[4:]
    assert all(isinstance(frame, ABNF) for frame in rest)
    assert [(f.opcode, f.fin, f.data) for f in rest] == [  # type: ignore[attr-defined]
        (ABNF.OPCODE_PING, 1, b"hb"),
        (ABNF.OPCODE_TEXT, 1, b"masked"),
        (ABNF.OPCODE_TEXT, 0, b"part"),
        (ABNF.OPCODE_CONT, 1, b"two"),
        (ABNF.OPCODE_CLOSE, 1, struct.pack("!H", 1000)),
    ]
    assert feed.pos == len(stream)
    with pytest.raises(EOFError):  # nothing left over, nothing invented
        read_all(reader, 1)


def test_reader_starts_with_bytes_read_ahead_and_validates_like_websocket_client() -> None:
    frame = server_frame(ABNF.OPCODE_TEXT, b"{}")
    assert _FrameReader(Feed(b"", [1], False).recv, frame).read() == b"{}"
    for bad in (server_frame(ABNF.OPCODE_TEXT, b"{}", rsv=4), server_frame(0x3, b""),
                server_frame(ABNF.OPCODE_CLOSE, b"\x03")):
        with pytest.raises(WebSocketProtocolException):
            _FrameReader(Feed(bad, [100], False).recv).read()


@pytest.mark.parametrize("size", [0, 1, 3, 125, 126, 127, 4000, 65535, 65536, 70001])
def test_text_frame_is_what_websocket_client_sends(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(random.randrange(256) for _ in range(4))
    monkeypatch.setattr(connection.os, "urandom", lambda n: key)
    text = ("ż" * size)[: size // 2] + "x" * (size - size // 2)
    expected = ABNF.create_frame(text, ABNF.OPCODE_TEXT)
    expected.get_mask_key = lambda n: key
    assert _text_frame(text) == expected.format()


def test_text_frame_masks_with_fresh_keys() -> None:
    assert len({_text_frame("same")[2:6] for _ in range(20)}) > 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=5))
def test_dumps_and_loads_match_json(msg: dict) -> None:
    text = _dumps(msg)
    assert text == json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    assert _loads(text.encode()) == json.loads(text.encode())


@pytest.mark.parametrize(
    "data",
    [b"", b"[1]", b"  {}", b"{} ", b"{", b'{"a":1}x', b"\xff{}", '{"a":"\ud800"}'.encode("utf-8", "surrogatepass"),
     "\ufeff{}".encode(), '{"a":1}'.encode("utf-16"), b"nope", b'{"a":NaN}'],
)
def test_loads_fails_and_succeeds_where_json_does(data: bytes) -> None:
    try:
        expected = ("ok", json.loads(data))
    except ValueError as error:
        expected = ("error", type(error))
    try:
        got = ("ok", _loads(data))
    except ValueError as error:
        got = ("error", type(error))
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert repr(got[1]) == repr(expected[1])


def test_dumps_reports_circular_messages_as_json_does() -> None:
    msg: dict = {"type": "echo"}
    msg["data"] = msg
    with pytest.raises(ValueError, match="Circular"):
        _dumps(msg)
    with pytest.raises(TypeError):
        _dumps({"data": object()})
