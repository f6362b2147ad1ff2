"""What every fault shares: directions, a probability, a seeded random source, a count, and
its own part of the spec (name, usage, parse, describe). Pure: no sockets, clock passed in.

A fault is one of four kinds, by what the relay asks it:

- `MessageFault` sees whole data messages (drop, corrupt, delay_ms, ...);
- `ControlFault` sees ping and pong frames (freeze_pings);
- `Trigger` fires once per connection, after N data frames or N seconds (cut_after, half_open);
- `Pacer` says when a frame may go out (throttle).

A fault module subclasses one of them, sets `name`, `usage` and `order`, overrides
`parse_value` / `describe_value` when it takes a value, and registers the class (registry.py).
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from common import values

DIRECTIONS = ("up", "down")
"""`up` = client -> server, `down` = server -> client."""


class FaultSpecError(ValueError):
    """A fault spec no proxy can use; the message is one line naming the bad part."""


@dataclasses.dataclass(frozen=True)
class Message:
    """One data message: its kind and its frames' payloads in order (str for text, bytes for binary).

    A text message whose bytes a fault changed or cut on purpose (`corrupt=P+raw`) carries
    bytes chunks with `text=True`: the relay then sends those bytes as they are, as text frames.
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


# ------------------------------------------------------------------------------------------ spec


@dataclasses.dataclass(frozen=True)
class FaultSetting:
    """One parsed part of a spec: a fault, its directions, probability and parameters."""

    fault: type[Fault]
    directions: tuple[str, ...]
    probability: float = 1.0
    params: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        return self.fault.name

    def describe(self) -> str:
        """The part back as text (parsing it gives this setting again)."""
        where = "" if set(self.directions) == set(DIRECTIONS) else f"{self.directions[0]}:"
        return where + self.fault.describe(self.probability, dict(self.params))


_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of a spec as the splitter cut it (`[up:|down:]name[=value][@probability]`): what a
    fault's `parse` reads. The helpers check a value and raise FaultSpecError naming the part."""

    text: str
    directions: tuple[str, ...]
    name: str
    value: str | None
    """After `=`, stripped; None when there is no `=`."""
    at: str | None
    """After `@`, stripped; None when there is no `@`."""
    usage: str
    """`drop takes drop=P (probability 0..1)`: said after a value that is no number at all."""

    def bad(self, detail: str = "") -> FaultSpecError:
        return FaultSpecError(f"bad fault {self.text!r}: {detail or self.usage}")

    def needs_value(self) -> FaultSpecError:
        return FaultSpecError(f"fault {self.text!r} needs a value: {self.usage}")

    def required(self) -> str:
        """The value; FaultSpecError when there is none."""
        if self.value is None:
            raise self.needs_value()
        return self.value

    def probability(self, raw: str) -> float:
        return self._check(values.probability, raw)

    def amount(self, raw: str) -> float:
        return self._check(values.amount, raw)

    def count(self, raw: str) -> int:
        return self._check(values.count, raw)

    def duration(self, raw: str) -> float:
        return self._check(values.duration, raw)

    def _check(self, check: Callable[[str, str, str], _T], raw: str) -> _T:
        try:
            return check(raw, self.text, self.usage)
        except ValueError as error:
            raise FaultSpecError(str(error)) from None


# ----------------------------------------------------------------------------------------- kinds


class Fault:
    """Base: directions, probability, random source, and a count of what this instance did.

    One instance per connection (its own state); the class owns the fault's part of the spec.
    """

    name: ClassVar[str] = ""
    """The name in a spec; also the module's name."""
    usage: ClassVar[str] = ""
    """How to write it, for errors and --help: `throttle=BYTES_PER_S`."""
    order: ClassVar[int] = 0
    """Where it is listed; message faults are also applied in this order."""

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

    # -- its part of the spec ----------------------------------------------------------

    @classmethod
    def parse(cls, part: Part) -> FaultSetting:
        """`name[=value][@P]`: `@P` is the probability, the value is the fault's own (parse_value)."""
        probability = 1.0 if part.at is None else part.probability(part.at)
        return FaultSetting(cls, part.directions, probability, tuple(cls.parse_value(part).items()))

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        """The constructor's keyword arguments from the value; the base takes no value."""
        if part.value is not None:
            raise part.bad()
        return {}

    @classmethod
    def describe(cls, probability: float, params: Mapping[str, Any]) -> str:
        value = cls.describe_value(params)
        return cls.name + (f"={value}" if value else "") + (f"@{probability:g}" if probability < 1 else "")

    @classmethod
    def describe_value(cls, params: Mapping[str, Any]) -> str:
        """The value as parse_value reads it; empty for none."""
        return ""


class MessageFault(Fault):
    """A fault on data messages: takes the scheduled batch, returns the new one.

    Any message fault in a spec turns permessage-deflate off (the relay must see plain messages).
    """

    paced: ClassVar[bool] = False
    """It may move messages later in time (the relay then needs its timed writer)."""

    def apply(self, direction: str, batch: list[Scheduled], now: float) -> list[Scheduled]:
        raise NotImplementedError

    def release(self, direction: str, now: float) -> list[Scheduled]:
        """Held messages whose hold ran out; nothing for a fault that holds none."""
        return []

    def flush(self, direction: str) -> list[Scheduled]:
        """Everything held, at once (a close frame goes out, or the source ended)."""
        return []


class ChanceFault(MessageFault):
    """A message fault whose value is its probability (`drop=0.2`); `@P` is refused.

    Options after a `+` (`corrupt=0.5+raw`) are read by parse_options.
    """

    @classmethod
    def parse(cls, part: Part) -> FaultSetting:
        if part.at is not None:
            raise part.bad(f"{part.usage} (its value is the probability)")
        value, plus, extra = part.required().partition("+")
        options = cls.parse_options(part, extra.strip()) if plus else {}
        return FaultSetting(cls, part.directions, part.probability(value), tuple(options.items()))

    @classmethod
    def parse_options(cls, part: Part, text: str) -> dict[str, Any]:
        """The text after `+`; the base takes none."""
        raise part.bad()

    @classmethod
    def describe(cls, probability: float, params: Mapping[str, Any]) -> str:
        options = cls.describe_options(params)
        return f"{cls.name}={probability:g}" + (f"+{options}" if options else "")

    @classmethod
    def describe_options(cls, params: Mapping[str, Any]) -> str:
        return ""


class ControlFault(Fault):
    """A fault on ping and pong frames."""

    def forward(self, direction: str) -> bool:
        """Whether this ping or pong goes on."""
        raise NotImplementedError


class Trigger(Fault):
    """A connection fault that fires once: after `frames` data frames or `seconds` (`=N` or `=Ns`).

    The probability is drawn once per connection (`armed`). What firing does is the relay's,
    by `cuts` / `halts`.
    """

    cuts: ClassVar[bool] = False
    """Firing ends both TCP connections (no close frame)."""
    halts: ClassVar[bool] = False
    """Firing stops forwarding in its directions, closing nothing."""

    def __init__(
        self, *args: Any, frames: int | None = None, seconds: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
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

    @classmethod
    def parse_value(cls, part: Part) -> dict[str, Any]:
        raw = part.required()
        if values.is_duration(raw):
            return {"seconds": part.duration(raw)}
        return {"frames": part.count(raw)}

    @classmethod
    def describe_value(cls, params: Mapping[str, Any]) -> str:
        if params.get("seconds") is not None:
            return f"{params['seconds']:g}s"
        if params.get("frames") is not None:
            return str(params["frames"])
        return ""


class Pacer(Fault):
    """A fault on when frames go out."""

    def due(self, direction: str, nbytes: int, now: float) -> float:
        """When a frame of `nbytes` may be sent (`now` when it need not wait)."""
        raise NotImplementedError
