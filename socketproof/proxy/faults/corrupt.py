"""`corrupt=P` or `corrupt=P+raw`: one payload byte of the message changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from socketproof.proxy.faults.base import ChanceFault, Message, Part, Scheduled
from socketproof.proxy.faults.registry import register


@register
class Corrupt(ChanceFault):
    """Change one payload byte of the message.

    Text stays valid UTF-8 (one character is replaced by another ASCII character) unless
    `raw` is asked for: then the top bit of one byte of the encoded text is flipped, which
    always makes it invalid UTF-8 (the receiver should close with 1007).
    Binary messages always get a byte flipped.
    """

    name = "corrupt"
    usage = "corrupt=P or corrupt=P+raw"
    order = 20

    def __init__(self, *args: Any, raw: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw = raw

    @classmethod
    def parse_options(cls, part: Part, text: str) -> dict[str, Any]:
        if text != "raw":
            raise part.bad()
        return {"raw": True}

    @classmethod
    def describe_options(cls, params: Mapping[str, Any]) -> str:
        return "raw" if params.get("raw") else ""

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for message, due in batch:
            if message.size and self.chance():
                self.did(direction)
                message = self.corrupted(message)
            out.append((message, due))
        return out

    def corrupted(self, message: Message) -> Message:
        chunks = list(message.chunks)
        candidates = [index for index, chunk in enumerate(chunks) if chunk]
        index = self.rng.choice(candidates)
        chunk = chunks[index]
        if isinstance(chunk, str) and not self.raw:
            at = self.rng.randrange(len(chunk))
            replacement = chr(33 + (ord(chunk[at]) + 1 + self.rng.randrange(90)) % 94)
            if replacement == chunk[at]:
                replacement = "!" if chunk[at] != "!" else "#"
            chunks[index] = chunk[:at] + replacement + chunk[at + 1 :]
        else:
            if message.text:  # raw corruption of text: every chunk becomes bytes
                chunks = [item.encode() if isinstance(item, str) else item for item in chunks]
            data = bytearray(chunks[index])
            at = self.rng.randrange(len(data))
            data[at] ^= 0x80 if message.text else 1 << self.rng.randrange(8)  # a flipped top bit breaks UTF-8
            chunks[index] = bytes(data)
        return Message(message.text, tuple(chunks))
