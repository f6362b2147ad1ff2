"""The fault layer of the proxy: pure, no sockets, clock and randomness passed in.

Shaped like Toxiproxy's toxics: one small class per fault, each with the directions it
applies to (`down` = server->client, `up` = client->server), a probability, a seeded
random source and a count of what it did. `parse_spec("drop=0.2,down:reorder=0.2")`
turns the command-line text into settings; `ConnectionFaults` builds fresh fault
objects for one relayed connection and is all the relay talks to.

Message faults (drop, corrupt, duplicate, reorder, delay_ms) see whole data messages;
control and connection faults (freeze_pings, cut_after, half_open, throttle) see frames.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Iterable
from typing import ClassVar

DIRECTIONS = ("up", "down")
"""`up` = client -> server, `down` = server -> client."""

HOLD_MAX = 1.0
"""Seconds a reordered message waits for a next one before it is released anyway (then only late)."""


class FaultSpecError(ValueError):
    """A fault spec no proxy can use; the message is one line naming the bad part."""


@dataclasses.dataclass(frozen=True)
class Message:
    """One data message: its kind and its frames' payloads in order (str for text, bytes for binary).

    A corrupted text message whose bytes were flipped on purpose (`corrupt=P+raw`) carries
    bytes chunks with `text=True`: the relay then sends possibly invalid UTF-8 as text.
    """

    text: bool
    chunks: tuple[str | bytes, ...]

    @property
    def size(self) -> int:
        return sum(len(chunk.encode() if isinstance(chunk, str) else chunk) for chunk in self.chunks)


Scheduled = tuple[Message, float]
"""A message and the monotonic time it may be sent at."""


class Tally(collections.Counter):
    """What the faults did, keyed `direction:fault` (shared by every connection of a proxy)."""


class Fault:
    """Base: directions, probability, random source, and a count of what this instance did."""

    name: ClassVar[str] = ""

    def __init__(
        self,
        directions: Iterable[str] = DIRECTIONS,
        probability: float = 1.0,
        rng: random.Random | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.directions = frozenset(directions)
        self.probability = probability
        self.rng = rng or random.Random()
        self.tally = tally if tally is not None else Tally()
        self.count = 0

    def applies(self, direction: str) -> bool:
        return direction in self.directions

    def chance(self) -> bool:
        return self.probability >= 1.0 or self.rng.random() < self.probability

    def did(self, direction: str, times: int = 1) -> None:
        self.count += times
        self.tally[f"{direction}:{self.name}"] += times


class MessageFault(Fault):
    """A fault on data messages: takes the scheduled batch, returns the new one."""

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        raise NotImplementedError

    def release(self, direction: str, now: float) -> list[Scheduled]:
        """Messages whose hold ran out (reorder); nothing for the others."""
        return []


class Drop(MessageFault):
    """The message is not forwarded."""

    name = "drop"

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        kept = []
        for item in batch:
            if self.chance():
                self.did(direction)
            else:
                kept.append(item)
        return kept


class Duplicate(MessageFault):
    """The message is forwarded twice in a row."""

    name = "duplicate"

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for item in batch:
            out.append(item)
            if self.chance():
                self.did(direction)
                out.append(item)
        return out


class Reorder(MessageFault):
    """Hold one message and release it right after the next one (two messages swap places).

    A held message with no successor within HOLD_MAX seconds is released late, not reordered
    (and not counted), so a quiet connection loses nothing.
    """

    name = "reorder"

    def __init__(self, *args: object, hold_max: float = HOLD_MAX, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hold_max = hold_max
        self.held: dict[str, tuple[Scheduled, float]] = {}

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out: list[Scheduled] = []
        for item in batch:
            held = self.held.pop(direction, None)
            if held is not None:
                out.append(item)
                out.append(held[0])
                self.did(direction)
            elif self.chance():
                self.held[direction] = (item, now)
            else:
                out.append(item)
        return out

    def release(self, direction: str, now: float) -> list[Scheduled]:
        held = self.held.get(direction)
        if held is None or now - held[1] < self.hold_max:
            return []
        del self.held[direction]
        return [held[0]]

    def flush(self, direction: str) -> list[Scheduled]:
        """Everything held, at once (the connection is closing)."""
        held = self.held.pop(direction, None)
        return [held[0]] if held is not None else []


class Corrupt(MessageFault):
    """Change one payload byte of the message.

    Text stays valid UTF-8 (one character is replaced by another ASCII character) unless
    `raw` is asked for: then the top bit of one byte of the encoded text is flipped, which
    always makes it invalid UTF-8 (the receiver should close with 1007).
    Binary messages always get a byte flipped.
    """

    name = "corrupt"

    def __init__(self, *args: object, raw: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.raw = raw

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


class Delay(MessageFault):
    """Every chosen message waits `ms` (+- a uniform `jitter_ms`) before it is sent, in order."""

    name = "delay_ms"

    def __init__(self, *args: object, ms: float = 0.0, jitter_ms: float = 0.0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.ms = ms
        self.jitter_ms = jitter_ms
        self.last_due: dict[str, float] = {}

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        out = []
        for message, due in batch:
            if self.chance():
                self.did(direction)
                extra = self.ms + (self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
                due = max(due, now + max(0.0, extra) / 1000.0)
            due = max(due, self.last_due.get(direction, 0.0))  # never overtake an earlier message
            self.last_due[direction] = due
            out.append((message, due))
        return out


class FreezePings(Fault):
    """Ping and pong frames are swallowed (the connection looks alive to nobody)."""

    name = "freeze_pings"

    def forward(self, direction: str) -> bool:
        if self.applies(direction) and self.chance():
            self.did(direction)
            return False
        return True


class Trigger(Fault):
    """Base of the connection faults that fire once: after `frames` data frames or `seconds`.

    The probability is drawn once per connection (`armed`).
    """

    def __init__(
        self, *args: object, frames: int | None = None, seconds: float | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.frames = frames
        self.seconds = seconds
        self.armed = self.chance()
        self.seen = 0
        self.fired = False

    def on_frame(self, direction: str) -> bool:
        """A data frame went by; True when this fault fires now."""
        if not self.armed or self.fired or self.frames is None or not self.applies(direction):
            return False
        self.seen += 1
        return self.seen >= self.frames and self.fire(direction)

    def on_time(self, elapsed: float) -> bool:
        """Time since the connection opened; True when this fault fires now."""
        if not self.armed or self.fired or self.seconds is None or elapsed < self.seconds:
            return False
        return self.fire("both" if len(self.directions) > 1 else next(iter(self.directions)))

    def fire(self, direction: str) -> bool:
        self.fired = True
        self.did(direction)
        return True


class CutAfter(Trigger):
    """The TCP connection is closed on both sides, with no close frame (peers see 1006)."""

    name = "cut_after"


class HalfOpen(Trigger):
    """Forwarding stops in its directions and nothing is closed: a dead but open connection."""

    name = "half_open"


class Throttle(Fault):
    """At most `rate` payload bytes per second per direction (a frame waits for its turn)."""

    name = "throttle"

    def __init__(self, *args: object, rate: float = 1.0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.rate = rate
        self.free_at: dict[str, float] = {}

    def due(self, direction: str, nbytes: int, now: float) -> float:
        """When a frame of `nbytes` may be sent; counts the frames it held back."""
        if not self.applies(direction):
            return now
        start = max(now, self.free_at.get(direction, 0.0))
        if start > now:
            self.did(direction)
        self.free_at[direction] = start + nbytes / self.rate
        return start


# ------------------------------------------------------------------------------------------ spec

PROBABILITY_FAULTS = ("drop", "duplicate", "reorder", "corrupt")
MESSAGE_FAULTS = ("drop", "corrupt", "duplicate", "reorder", "delay_ms")
"""Data-frame faults, in the order they are applied; any of them turns permessage-deflate off."""
CONNECTION_FAULTS = ("cut_after", "half_open", "freeze_pings", "throttle")
KNOWN = (*MESSAGE_FAULTS, *CONNECTION_FAULTS)

_USAGE = {
    "drop": "drop=P (probability 0..1)",
    "duplicate": "duplicate=P",
    "reorder": "reorder=P",
    "corrupt": "corrupt=P or corrupt=P+raw",
    "delay_ms": "delay_ms=MS or delay_ms=MS+JITTER_MS",
    "cut_after": "cut_after=N (data frames) or cut_after=Ns (seconds)",
    "half_open": "half_open, half_open=N (data frames) or half_open=Ns (seconds)",
    "freeze_pings": "freeze_pings or freeze_pings@P",
    "throttle": "throttle=BYTES_PER_S",
}


@dataclasses.dataclass(frozen=True)
class FaultSetting:
    """One parsed part of a spec: a fault, its directions, probability and parameters."""

    name: str
    directions: tuple[str, ...]
    probability: float = 1.0
    params: tuple[tuple[str, object], ...] = ()

    def describe(self) -> str:
        where = "" if set(self.directions) == set(DIRECTIONS) else f"{self.directions[0]}:"
        values = dict(self.params)
        if self.name in PROBABILITY_FAULTS:
            text = f"{self.name}={self.probability:g}" + ("+raw" if values.get("raw") else "")
            return where + text
        if self.name == "delay_ms":
            text = f"delay_ms={values['ms']:g}" + (f"+{values['jitter_ms']:g}" if values.get("jitter_ms") else "")
        elif self.name in ("cut_after", "half_open"):
            if values.get("seconds") is not None:
                text = f"{self.name}={values['seconds']:g}s"
            elif values.get("frames") is not None:
                text = f"{self.name}={values['frames']}"
            else:
                text = self.name
        elif self.name == "throttle":
            text = f"throttle={values['rate']:g}"
        else:
            text = self.name
        return where + text + (f"@{self.probability:g}" if self.probability < 1 else "")


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """A parsed spec: the settings in the order given."""

    settings: tuple[FaultSetting, ...] = ()

    @property
    def data_faults_on(self) -> bool:
        """A data-frame fault is on: the relay must see plain messages (no permessage-deflate)."""
        return any(setting.name in MESSAGE_FAULTS for setting in self.settings)

    def describe(self) -> str:
        return ",".join(setting.describe() for setting in self.settings) or "none"

    def __bool__(self) -> bool:
        return bool(self.settings)


def parse_spec(text: str | None) -> FaultSpec:
    """`drop=0.2,down:reorder=0.2,delay_ms=50+20,freeze_pings` -> FaultSpec; FaultSpecError names the bad part.

    Each part is `[up:|down:]name[=value][@probability]`; `none` or an empty text means no fault.
    """
    text = (text or "").strip()
    if text.lower() in ("", "none"):
        return FaultSpec()
    settings: list[FaultSetting] = []
    taken: set[tuple[str, str]] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            raise FaultSpecError(f"empty part in fault spec {text!r}")
        setting = _parse_part(part)
        for direction in setting.directions:
            if (setting.name, direction) in taken:
                raise FaultSpecError(f"fault {setting.name!r} given twice for direction {direction!r} in {text!r}")
            taken.add((setting.name, direction))
        settings.append(setting)
    return FaultSpec(tuple(settings))


def _parse_part(part: str) -> FaultSetting:
    directions: tuple[str, ...] = DIRECTIONS
    body = part
    if ":" in part:
        where, body = (item.strip() for item in part.split(":", 1))
        if where not in ("up", "down", "both"):
            raise FaultSpecError(f"bad direction {where!r} in {part!r}: use up:, down: or none (both)")
        directions = DIRECTIONS if where == "both" else (where,)
    name, has_value, raw = (item.strip() for item in body.partition("="))
    probability = 1.0
    at_text = None
    if "@" in (raw if has_value else name):
        if has_value:
            raw, _, at_text = raw.partition("@")
        else:
            name, _, at_text = name.partition("@")
        name, raw = name.strip(), raw.strip()
    if name not in KNOWN:
        raise FaultSpecError(f"unknown fault {name!r} in {part!r}; known: {', '.join(KNOWN)}")
    usage = f"{name} takes {_USAGE[name]}"
    if at_text is not None:
        if name in PROBABILITY_FAULTS:
            raise FaultSpecError(f"bad fault {part!r}: {usage} (its value is the probability)")
        probability = _probability(at_text.strip(), part, usage)
    params: dict[str, object] = {}
    if name in PROBABILITY_FAULTS:
        if not has_value:
            raise FaultSpecError(f"fault {part!r} needs a value: {usage}")
        value, plus, extra = raw.partition("+")
        if plus and not (name == "corrupt" and extra.strip() == "raw"):
            raise FaultSpecError(f"bad fault {part!r}: {usage}")
        probability = _probability(value.strip(), part, usage)
        if plus:
            params["raw"] = True
    elif name == "delay_ms":
        if not has_value:
            raise FaultSpecError(f"fault {part!r} needs a value: {usage}")
        value, plus, extra = raw.partition("+")
        params["ms"] = _amount(value, part, usage)
        params["jitter_ms"] = _amount(extra, part, usage) if plus else 0.0
    elif name in ("cut_after", "half_open"):
        if not has_value:
            if name == "cut_after":
                raise FaultSpecError(f"fault {part!r} needs a value: {usage}")
            params["seconds"] = 0.0
        elif raw.endswith("s"):
            params["seconds"] = _amount(raw[:-1], part, usage)
        else:
            params["frames"] = _count(raw, part, usage)
    elif name == "throttle":
        if not has_value:
            raise FaultSpecError(f"fault {part!r} needs a value: {usage}")
        params["rate"] = _amount(raw, part, usage)
        if not params["rate"]:
            raise FaultSpecError(f"bad fault {part!r}: the rate must be above 0 bytes/s")
    elif has_value:  # freeze_pings
        raise FaultSpecError(f"bad fault {part!r}: {usage}")
    return FaultSetting(name, directions, probability, tuple(params.items()))


def _probability(raw: str, part: str, usage: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"bad probability {raw!r} in {part!r}: {usage}") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"probability in {part!r} must be between 0 and 1, got {raw}")
    return value


def _amount(raw: str, part: str, usage: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise FaultSpecError(f"bad number {raw.strip()!r} in {part!r}: {usage}") from None
    if not 0.0 <= value < float("inf"):
        raise FaultSpecError(f"number in {part!r} must be 0 or more, got {raw.strip()}")
    return value


def _count(raw: str, part: str, usage: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise FaultSpecError(f"bad count {raw.strip()!r} in {part!r}: {usage}") from None
    if value < 1:
        raise FaultSpecError(f"count in {part!r} must be at least 1, got {raw.strip()}")
    return value


# ------------------------------------------------------------------------------- per connection

_CLASSES: dict[str, type[Fault]] = {
    cls.name: cls for cls in (Drop, Duplicate, Reorder, Corrupt, Delay, FreezePings, CutAfter, HalfOpen, Throttle)
}


def build(setting: FaultSetting, rng: random.Random, tally: Tally) -> Fault:
    """A fresh fault object (its own state) for one connection."""
    cls = _CLASSES[setting.name]
    return cls(setting.directions, setting.probability, rng, tally, **dict(setting.params))  # type: ignore[arg-type]


class ConnectionFaults:
    """Every fault of a spec, built for one connection: what the relay asks at each frame."""

    def __init__(self, spec: FaultSpec, tally: Tally, seed: int | None = None, index: int = 0) -> None:
        self.rng = random.Random(f"{seed}:{index}") if seed is not None else random.Random()
        faults = [build(setting, self.rng, tally) for setting in spec.settings]
        by_order = {name: position for position, name in enumerate(MESSAGE_FAULTS)}
        self.message = sorted((f for f in faults if isinstance(f, MessageFault)), key=lambda f: by_order[f.name])
        self.pings = [f for f in faults if isinstance(f, FreezePings)]
        self.triggers = [f for f in faults if isinstance(f, Trigger)]
        self.throttles = [f for f in faults if isinstance(f, Throttle)]
        self.faults = faults

    def buffers_messages(self, direction: str) -> bool:
        """True when whole messages must be collected before forwarding (a message fault applies)."""
        return any(fault.applies(direction) for fault in self.message)

    def on_message(self, direction: str, message: Message, now: float) -> list[Scheduled]:
        batch: list[Scheduled] = [(message, now)]
        for fault in self.message:
            if fault.applies(direction):
                batch = fault.apply(direction, batch, now)
        return batch

    def release(self, direction: str, now: float) -> list[Scheduled]:
        """Held messages whose time ran out (call a few times a second)."""
        out: list[Scheduled] = []
        for fault in self.message:
            out.extend(fault.release(direction, now))
        return out

    def flush(self, direction: str) -> list[Scheduled]:
        """Held messages, before a close frame goes out."""
        out: list[Scheduled] = []
        for fault in self.message:
            if isinstance(fault, Reorder):
                out.extend(fault.flush(direction))
        return out

    def forward_control(self, direction: str) -> bool:
        """Whether a ping or pong frame goes on."""
        return all(fault.forward(direction) for fault in self.pings)

    def on_data_frame(self, direction: str) -> list[str]:
        """A data frame went by: the connection faults that fire now (`cut_after`, `half_open`)."""
        return [fault.name for fault in self.triggers if fault.on_frame(direction)]

    def on_time(self, elapsed: float) -> list[Trigger]:
        return [fault for fault in self.triggers if fault.on_time(elapsed)]

    def timers(self) -> list[float]:
        """Seconds after the open at which a timed connection fault may fire."""
        return sorted(
            fault.seconds for fault in self.triggers if fault.armed and fault.seconds is not None
        )

    def halted(self, direction: str) -> bool:
        """Forwarding in this direction has stopped (half_open fired)."""
        return any(f.fired and f.applies(direction) for f in self.triggers if isinstance(f, HalfOpen))

    def pace(self, direction: str, nbytes: int, now: float) -> float:
        """When a frame of `nbytes` may go out (throttle); `now` without one."""
        due = now
        for fault in self.throttles:
            due = max(due, fault.due(direction, nbytes, now))
        return due

    @property
    def paced(self) -> bool:
        """A fault may hold frames back in time: the relay needs a timed writer."""
        return bool(self.throttles) or any(isinstance(f, (Delay, Reorder)) for f in self.message)
