"""The proxy's bounds on one connection: bytes per message, bytes queued per leg, seconds a write may stall.

A peer that sends one endless message, a compression bomb, or never reads must cost the
proxy a bounded amount of memory and time (issue 24, finding 7):

- a message over `max_message_bytes` (counted after inflating) closes both sides with 1009;
- a leg's queue holds at most `queue_bytes` of data before the reading side is held back;
- a write that makes no progress for `write_timeout` seconds ends the connection.

Pure: no sockets and no gevent, so the command line and the tests can build a `Limits`.
"""

from __future__ import annotations

import dataclasses
import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Default bytes per message: the client's cap (client/framing.py), so the proxy refuses nothing the client takes."""
QUEUE_BYTES = 16 * 1024 * 1024
"""Default data bytes waiting per leg; one larger message still goes through alone."""
WRITE_TIMEOUT = 30.0
"""Default seconds a peer may take no bytes at all before the proxy ends its connection."""
TOO_BIG_REASON = "message too big"


class LimitError(ValueError):
    """A bound no proxy can run with (one line for the user)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """The bounds of every connection of one proxy."""

    max_message_bytes: int = MAX_MESSAGE_BYTES
    queue_bytes: int = QUEUE_BYTES
    write_timeout: float = WRITE_TIMEOUT

    def __post_init__(self) -> None:
        if not 1 <= self.max_message_bytes <= 1 << 40:
            raise LimitError(f"--max-message-bytes must be between 1 and 2**40, got {self.max_message_bytes}")
        if not 1 <= self.queue_bytes <= 1 << 40:
            raise LimitError(f"--queue-bytes must be between 1 and 2**40, got {self.queue_bytes}")
        if not 0 < self.write_timeout <= 3600:
            raise LimitError(f"--write-timeout must be above 0 and at most 3600 seconds, got {self.write_timeout:g}")

    def args(self) -> list[str]:
        """The command-line options that give a child proxy these bounds."""
        return ["--max-message-bytes", str(self.max_message_bytes), "--queue-bytes", str(self.queue_bytes),
                "--write-timeout", f"{self.write_timeout:g}"]


def text_size(payload: str | bytes) -> int:
    """Bytes of a frame's payload on the wire before framing (UTF-8 for text; O(1) for ASCII)."""
    if isinstance(payload, str) and not payload.isascii():
        return len(payload.encode("utf-8"))
    return len(payload)


class BoundedDeflate(PerMessageDeflate):
    """permessage-deflate that inflates at most `limit` bytes per message, then answers 1009.

    wsproto inflates each chunk with no bound, so a few kilobytes can become gigabytes (a
    compression bomb). Here every `decompress` asks for at most what the message has left,
    plus one byte to see that it is over: a bomb costs `limit`, whatever its ratio.
    Relies on wsproto 1.3's PerMessageDeflate state (`_inbound_compressed`, `_decompressor`).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.inflated = 0

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        return self._inflate(bytes(data))

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol, fin: bool) -> bytes | CloseReason | None:
        if not fin:
            return None
        compressed = self._inbound_compressed and self._inbound_is_compressible
        self._inbound_compressed = None
        if not compressed:
            self.inflated = 0
            return None
        tail = self._inflate(b"\x00\x00\xff\xff")  # the end of a message (RFC 7692 7.2.2)
        self.inflated = 0
        no_takeover = self.server_no_context_takeover if proto.client else self.client_no_context_takeover
        if no_takeover:
            self._decompressor = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        assert self._decompressor is not None
        try:
            out = self._decompressor.decompress(data, self.limit - self.inflated + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated += len(out)
        if self.inflated > self.limit:  # output stopped at the bound: the rest is never inflated
            return CloseReason.MESSAGE_TOO_BIG
        return out
