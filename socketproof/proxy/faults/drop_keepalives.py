"""`drop_keepalives` or `drop_keepalives@P`: a protocol's own keep-alive messages are not forwarded."""

from __future__ import annotations

from socketproof.proxy.faults.base import Message, MessageFault, Scheduled
from socketproof.proxy.faults.registry import register

KEEPALIVES = frozenset({b"\xc0\x00", b"\xd0\x00"})
"""MQTT's PINGREQ and PINGRESP, each a whole binary message (MQTT over WebSocket)."""


def is_keepalive(message: Message) -> bool:
    """A STOMP heart-beat (a text message of end-of-lines only) or an MQTT PINGREQ/PINGRESP."""
    if message.text:
        text = "".join(c if isinstance(c, str) else c.decode("utf-8", "replace") for c in message.chunks)
        return bool(text) and not text.strip("\r\n")
    return b"".join(c if isinstance(c, bytes) else c.encode() for c in message.chunks) in KEEPALIVES


@register
class DropKeepalives(MessageFault):
    """Protocol keep-alives in data messages (STOMP heart-beats, MQTT PINGREQ/PINGRESP) are not forwarded;
    everything else is."""

    name = "drop_keepalives"
    usage = "drop_keepalives or drop_keepalives@P"
    order = 65

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        kept = []
        for item in batch:
            if is_keepalive(item[0]) and self.chance():
                self.did(direction)
            else:
                kept.append(item)
        return kept
