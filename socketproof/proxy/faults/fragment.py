"""`fragment=BYTES`: a message goes out re-cut into frames of 1..BYTES payload bytes (Toxiproxy's slicer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socketproof.proxy.faults.base import Message, MessageFault, Part, Scheduled
from socketproof.proxy.faults.registry import register


@register
class Fragment(MessageFault):
    """Each chosen message goes out in frames of 1..BYTES payload bytes, cut anywhere (text even inside a character).

    A valid message stays valid, so only a peer that mishandles fragments notices: one that
    reads a frame as a whole message, or decodes each text frame as UTF-8 on its own. The
    frame sizes are drawn from the connection's seeded random source. A message of one byte,
    or one that happens to stay a single frame, goes out as it came (and is not counted).
    """

    name = "fragment"
    usage = "fragment=BYTES (largest frame payload; each size drawn from 1..BYTES)"
    order = 60  # the last message fault: it cuts what the others send

    def __init__(self, *args: Any, most: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.most = most

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        return {"most": part.count(part.required())}

    @classmethod
    def describe_value(cls, params: Mapping[str, Any]) -> str:
        return str(params["most"])

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for message, due in batch:
            if message.size > 1 and self.chance():
                pieces = self.cut(message)
                if len(pieces) > 1:
                    self.did(direction)
                    message = Message(message.text, pieces)
            out.append((message, due))
        return out

    def cut(self, message: Message) -> tuple[bytes, ...]:
        """The message's payload in pieces of 1..most bytes (text as its UTF-8 bytes: the relay sends them as text)."""
        data = b"".join(chunk.encode() if isinstance(chunk, str) else chunk for chunk in message.chunks)
        pieces, at = [], 0
        while at < len(data):
            size = self.rng.randint(1, self.most)
            pieces.append(data[at : at + size])
            at += size
        return tuple(pieces)
