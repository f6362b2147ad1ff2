"""Every fault of a spec, built fresh for one relayed connection: all the relay talks to."""

from __future__ import annotations

import random

from socketproof.proxy.faults.base import (
    ControlFault,
    Fault,
    FaultSetting,
    Message,
    MessageFault,
    Pacer,
    Scheduled,
    Tally,
    Trigger,
)
from socketproof.proxy.faults.spec import FaultSpec


def build(setting: FaultSetting, rng: random.Random, tally: Tally) -> Fault:
    """A fresh fault object (its own state) for one connection."""
    return setting.fault(setting.directions, setting.probability, rng, tally, **dict(setting.params))


class ConnectionFaults:
    """Every fault of a spec, built for one connection: what the relay asks at each frame."""

    def __init__(self, spec: FaultSpec, tally: Tally, seed: int | None = None, index: int = 0) -> None:
        self.rng = random.Random(f"{seed}:{index}") if seed is not None else random.Random()
        faults = [build(setting, self.rng, tally) for setting in spec.settings]
        self.message = sorted((f for f in faults if isinstance(f, MessageFault)), key=lambda f: f.order)
        self.controls = [f for f in faults if isinstance(f, ControlFault)]
        self.triggers = [f for f in faults if isinstance(f, Trigger)]
        self.halters = [f for f in self.triggers if f.halts]
        self.pacers = [f for f in faults if isinstance(f, Pacer)]
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
            out.extend(fault.flush(direction))
        return out

    def forward_control(self, direction: str) -> bool:
        """Whether a ping or pong frame goes on."""
        return all(fault.forward(direction) for fault in self.controls)

    def on_data_frame(self, direction: str) -> list[Trigger]:
        """A data frame went by: the connection faults that fire now (see Trigger.cuts / halts)."""
        return [fault for fault in self.triggers if fault.on_frame(direction)]

    def on_time(self, elapsed: float) -> list[Trigger]:
        return [fault for fault in self.triggers if fault.on_time(elapsed)]

    def timers(self) -> list[float]:
        """Seconds after the open at which a timed connection fault may fire."""
        return sorted(
            fault.seconds for fault in self.triggers if fault.armed and fault.seconds is not None
        )

    def halted(self, direction: str) -> bool:
        """Forwarding in this direction has stopped (a halting trigger fired: half_open)."""
        return any(f.fired and f.applies(direction) for f in self.halters)

    def pace(self, direction: str, nbytes: int, now: float) -> float:
        """When a frame of `nbytes` may go out (throttle); `now` without one."""
        due = now
        for fault in self.pacers:
            due = max(due, fault.due(direction, nbytes, now))
        return due

    @property
    def paced(self) -> bool:
        """A fault may hold frames back in time: the relay needs a timed writer."""
        return bool(self.pacers) or any(f.paced for f in self.message)
