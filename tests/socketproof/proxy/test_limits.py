"""The proxy's bounds, piece by piece (issue 24, finding 7): the bounded inflate with wsproto's own
frames, the stall-bounded send and the byte-bounded queue over real socket pairs, the options.

The whole proxy under a hostile peer is in tests/security/test_hostile_proxy.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import gevent
import pytest
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from socketproof.proxy.limits import BoundedDeflate, LimitError, Limits, text_size
from socketproof.proxy.relay import Outbound, WriteTimeout, send_within

ROOT = Path(__file__).resolve().parents[3]
ACCEPTED = "permessage-deflate"


def legs(limit: int) -> tuple[FrameProtocol, FrameProtocol]:
    """A wsproto client that compresses, and the proxy's reading side with the bounded inflate."""
    sender = PerMessageDeflate()
    sender.finalize(ACCEPTED)
    reader = BoundedDeflate(limit)
    reader.finalize(ACCEPTED)
    return FrameProtocol(client=True, extensions=[sender]), FrameProtocol(client=False, extensions=[reader])


def received(reader: FrameProtocol, wire: bytes) -> bytes:
    reader.receive_bytes(wire)
    return b"".join(frame.payload for frame in reader.received_frames() if frame.opcode is Opcode.BINARY)


def test_bounded_inflate_passes_messages_up_to_the_limit_and_keeps_the_context() -> None:
    client, proxy = legs(limit=100_000)
    first = bytes(range(256)) * 390  # 99 840 bytes: under the limit
    assert received(proxy, client.send_data(first)) == first
    assert received(proxy, client.send_data(b"x" * 100_000)) == b"x" * 100_000  # exactly the limit
    wire = client.send_data(b"abc" * 20_000, fin=False) + client.send_data(b"def" * 13_333, fin=True)
    assert received(proxy, wire) == b"abc" * 20_000 + b"def" * 13_333  # a fragmented message: 99 999 bytes


def test_bounded_inflate_refuses_one_byte_over_with_1009() -> None:
    client, proxy = legs(limit=100_000)
    proxy.receive_bytes(client.send_data(b"y" * 100_001))
    with pytest.raises(ParseFailed) as refused:
        list(proxy.received_frames())
    assert refused.value.code == CloseReason.MESSAGE_TOO_BIG


def test_bounded_inflate_counts_a_fragmented_message_as_one() -> None:
    client, proxy = legs(limit=100_000)
    proxy.receive_bytes(client.send_data(b"z" * 60_000, fin=False) + client.send_data(b"z" * 60_000, fin=True))
    with pytest.raises(ParseFailed) as refused:
        list(proxy.received_frames())
    assert refused.value.code == CloseReason.MESSAGE_TOO_BIG


def test_a_compression_bomb_inflates_no_further_than_the_limit() -> None:
    """64 MiB of zeros in ~64 KB: the bounded inflate allocates about the limit (1 MiB), not 64 MiB."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(64)) + squeeze.flush(zlib.Z_SYNC_FLUSH)[:-4]
    size = len(bomb)
    length = (bytes([0x80 | 126]) + size.to_bytes(2, "big") if size < 1 << 16
              else bytes([0x80 | 127]) + size.to_bytes(8, "big"))
    frame = bytes([0x80 | 0x40 | 0x2]) + length + b"\0\0\0\0" + bomb  # FIN, RSV1 (compressed), binary; zero mask
    _, proxy = legs(limit=1 << 20)
    tracemalloc.start()
    try:
        proxy.receive_bytes(frame)
        with pytest.raises(ParseFailed) as refused:
            list(proxy.received_frames())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == CloseReason.MESSAGE_TOO_BIG
    assert peak < 8 << 20, f"inflating the bomb took {peak} bytes"


def test_text_size_counts_utf8_bytes() -> None:
    assert text_size("abc") == 3 and text_size("é€") == 5 and text_size(b"\xff\x00") == 2


# ------------------------------------------------------------------------------ stalls and queue


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair with small fixed buffers (so a stall shows after ~100 KiB)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        mine = socket.socket()
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        mine.connect(listener.getsockname())
        theirs, _ = listener.accept()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    return mine, theirs


def test_send_within_raises_when_the_peer_takes_nothing() -> None:
    mine, theirs = tcp_pair()
    try:
        started = time.monotonic()
        with pytest.raises(WriteTimeout):
            send_within(mine, bytes(16 << 20), 0.3)  # far more than the socket buffers: it must stall
        assert 0.25 <= time.monotonic() - started < 5
    finally:
        mine.close()
        theirs.close()


def test_send_within_bounds_stalls_not_the_whole_send() -> None:
    mine, theirs = tcp_pair()
    got = bytearray()

    def slow_reader() -> None:  # 64 KiB every 0.05 s: the whole send takes > 1 s, no stall reaches 0.5 s
        while len(got) < 2 << 20:
            gevent.sleep(0.05)
            got.extend(theirs.recv(1 << 16))

    reader = gevent.spawn(slow_reader)
    try:
        started = time.monotonic()
        send_within(mine, bytes(2 << 20), 0.5)
        reader.join(30)
        assert len(got) == 2 << 20 and time.monotonic() - started > 0.5
    finally:
        reader.kill()
        mine.close()
        theirs.close()


def test_the_queue_holds_at_most_its_bytes_and_a_stalled_peer_ends_the_leg() -> None:
    mine, theirs = tcp_pair()
    stalls: list[float] = []
    limits = Limits(queue_bytes=256 << 10, write_timeout=0.5)
    out = Outbound(mine, FrameProtocol(client=False, extensions=[]), lambda: None, lambda: None, limits,
                   lambda: stalls.append(time.monotonic()))
    highest = 0

    def producer() -> None:
        nonlocal highest
        for _ in range(1000):  # 64 MiB offered to a peer that never reads
            out.put("data", bytes(64 << 10), True, 0.0, 64 << 10)
            highest = max(highest, out.queued)

    started = time.monotonic()
    feeding = gevent.spawn(producer)
    try:
        out.greenlet.join(10)
        assert stalls and stalls[0] - started < 5, "the writer did not give up on a peer that never reads"
        assert out.broken
        feeding.join(5)
        assert feeding.dead, "a put still waits for room on a leg that is over"
        assert highest <= limits.queue_bytes
    finally:
        feeding.kill()
        out.greenlet.kill()
        mine.close()
        theirs.close()


def test_one_message_larger_than_the_queue_still_goes_through() -> None:
    mine, theirs = tcp_pair()
    out = Outbound(mine, FrameProtocol(client=False, extensions=[]), lambda: None, lambda: None,
                   Limits(queue_bytes=1024), lambda: None)
    try:
        out.put("data", b"a" * 10_000, True, 0.0, 10_000)
        out.put("data", b"b" * 10_000, True, 0.0, 10_000)
        out.put("stop")
        out.greenlet.join(5)
        theirs.settimeout(5)
        data = b""
        while len(data) < 2 * (10_000 + 4):
            data += theirs.recv(65536)
        assert data[4:10_004] == b"a" * 10_000 and data[-10_000:] == b"b" * 10_000
    finally:
        out.greenlet.kill()
        mine.close()
        theirs.close()


# ---------------------------------------------------------------------------------------- options


def test_limits_refuse_bounds_no_proxy_can_run_with() -> None:
    for bad in ({"max_message_bytes": 0}, {"queue_bytes": -1}, {"write_timeout": 0.0}, {"write_timeout": 1e9}):
        with pytest.raises(LimitError):
            Limits(**bad)  # type: ignore[arg-type]
    assert Limits().max_message_bytes == 64 * 1024 * 1024  # the client's cap (client/framing.py)


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--write-timeout", "0", "--write-timeout"),
    ("--max-message-bytes", "0", "--max-message-bytes"),
    ("--queue-bytes", "lots", "--queue-bytes"),
])
def test_a_bad_bound_on_the_command_line_is_one_line_and_exit_2(flag: str, value: str, named: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "socketproof.proxy", "--upstream", "ws://127.0.0.1:1", flag, value],
        cwd=ROOT, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr, result.stderr
