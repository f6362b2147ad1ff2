"""Unstamped messages: their identity, and the order each connection received them in.

A message without a stamp (a feed the backend publishes, a server notice) is known by a
64-bit key, the same in every process (`message_key`): the adapter's `Delivery.message_id`,
or, when it gives none, a hash of the delivery's body (`content_key`, computed by the
client). Per (connection, channel) the recorder keeps a `MessageLog`: those keys in arrival
order with their receive times, 12 bytes a message (an `array('q')` of keys and an
`array('f')` of float32 offsets from the log's first receipt: 0.25 ms resolution over an
hour, 8 ms over a day). It is made on the first unstamped delivery, so an idle connection
keeps none. At most LOG_CAP messages per log and LOG_BUDGET per connection: what comes after
is only counted in `truncated`, so a log is always a prefix of what arrived, and a truncated
one tells the checks they cannot judge what it no longer holds.
"""
from __future__ import annotations

import base64
import json
import sys
from array import array
from hashlib import blake2b
from typing import Any

LOG_CAP = 4096
"""Messages kept per (connection, channel) log: 48 KB, about what one sender stream's
Arrivals costs at RUN_CAP runs. At 10 messages a second, the first ~7 minutes."""
LOG_BUDGET = 16_384
"""Messages kept per connection over all its channels' logs (192 KB), like RUN_BUDGET."""
_INT64 = 1 << 63


def _hash64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little", signed=True)


def message_key(message_id: Any) -> int:
    """A message id as a signed 64-bit key, the same in every process: an int that fits is
    itself; a str or bytes id is hashed (blake2b, 8 bytes); anything else by its JSON text."""
    if type(message_id) is int and -_INT64 <= message_id < _INT64:
        return message_id
    if isinstance(message_id, str):
        return _hash64(message_id.encode("utf-8", "surrogatepass"))
    if isinstance(message_id, (bytes, bytearray, memoryview)):
        return _hash64(bytes(message_id))
    return _hash64(_canonical(message_id))


def content_key(body: Any) -> int:
    """The key of a message known only by its content: its body hashed (a dict or list by its
    canonical JSON, so every connection that parsed the same frame gets the same key)."""
    if isinstance(body, str):
        return _hash64(body.encode("utf-8", "surrogatepass"))
    if isinstance(body, (bytes, bytearray, memoryview)):
        return _hash64(bytes(body))
    return _hash64(_canonical(body))


def _canonical(value: Any) -> bytes:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError, RecursionError):  # keys that do not sort, a cycle
        text = repr(value)
    return text.encode("utf-8", "surrogatepass")


def key_text(key: int) -> str:
    """A key as evidence shows it: 16 hex digits."""
    return f"{key & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _pack(a: array) -> str:
    if sys.byteorder == "big":  # the wire is little-endian, whatever the machine
        a = array(a.typecode, a)
        a.byteswap()
    return base64.b64encode(a.tobytes()).decode("ascii")


def _unpack(typecode: str, text: str | None) -> array:
    a = array(typecode)
    if text:
        a.frombytes(base64.b64decode(text))
        if sys.byteorder == "big":
            a.byteswap()
    return a


class MessageLog:
    """The unstamped messages one connection received on one channel, in arrival order.

    `keys[i]` arrived at `t0 + offsets[i]`; `truncated` counts arrivals after the log was
    full (none of them is kept, so the log is a prefix of what arrived).
    """

    __slots__ = ("t0", "keys", "offsets", "truncated")

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.keys = array("q")
        self.offsets = array("f")
        self.truncated = 0

    def add(self, key: int, t: float, room: bool = True) -> bool:
        """Append one arrival; False (counted in `truncated`) when the log is full, `room` is
        False (the connection's LOG_BUDGET is spent) or the log was truncated before."""
        if room and not self.truncated and len(self.keys) < LOG_CAP:
            self.keys.append(key)
            self.offsets.append(t - self.t0)
            return True
        self.truncated += 1
        return False

    def __len__(self) -> int:
        return len(self.keys)

    def times(self) -> list[float]:
        t0 = self.t0
        return [t0 + off for off in self.offsets]

    def entries(self) -> list[tuple[int, float]]:
        """(key, receive time) pairs, in arrival order."""
        return list(zip(self.keys, self.times(), strict=False))

    @property
    def last_at(self) -> float | None:
        return self.t0 + self.offsets[-1] if self.offsets else None

    def to_dict(self) -> dict:
        """{"t0", "keys": base64 of little-endian int64s, "offsets": base64 of float32s, "truncated"}."""
        return {"t0": self.t0, "keys": _pack(self.keys), "offsets": _pack(self.offsets),
                "truncated": self.truncated}

    @classmethod
    def from_dict(cls, d: dict) -> MessageLog:
        log = cls(float(d.get("t0") or 0.0))
        log.keys = _unpack("q", d.get("keys"))
        log.offsets = _unpack("f", d.get("offsets"))
        n = min(len(log.keys), len(log.offsets))
        del log.keys[n:], log.offsets[n:]
        log.truncated = int(d.get("truncated", 0))
        return log

    def copy(self) -> MessageLog:
        log = MessageLog.__new__(MessageLog)
        log.t0, log.truncated = self.t0, self.truncated
        keys, offsets = self.keys[:], self.offsets[:]  # a hook may append between the two copies
        n = min(len(keys), len(offsets))
        del keys[n:], offsets[n:]
        log.keys, log.offsets = keys, offsets
        return log

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MessageLog) and self.t0 == other.t0 and self.keys == other.keys
                and self.offsets == other.offsets and self.truncated == other.truncated)

    def __repr__(self) -> str:
        return f"MessageLog({len(self.keys)} messages from {self.t0}, truncated={self.truncated})"
