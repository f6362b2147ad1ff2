"""The fault spec: `drop=0.2,down:reorder=0.2,delay_ms=50+20,freeze_pings` -> FaultSpec.

The splitter only cuts the text into parts (`[up:|down:]name[=value][@probability]`) and
asks the registry for the fault of each name; the fault's class reads its own value.
"""

from __future__ import annotations

import dataclasses

from socketproof.proxy.faults.base import DIRECTIONS, FaultSetting, FaultSpecError, MessageFault, Part
from socketproof.proxy.faults.registry import FAULTS, Registry


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """A parsed spec: the settings in the order given."""

    settings: tuple[FaultSetting, ...] = ()

    @property
    def data_faults_on(self) -> bool:
        """A data-frame fault is on: the relay must see plain messages (no permessage-deflate)."""
        return any(issubclass(setting.fault, MessageFault) for setting in self.settings)

    def describe(self) -> str:
        return ",".join(setting.describe() for setting in self.settings) or "none"

    def __bool__(self) -> bool:
        return bool(self.settings)


def parse_spec(text: str | None, registry: Registry = FAULTS) -> FaultSpec:
    """`drop=0.2,down:reorder=0.2,delay_ms=50+20,freeze_pings` -> FaultSpec; FaultSpecError names the bad part.

    Each part is `[up:|down:]name[=value][@probability]`; `none` or an empty text means no fault.
    """
    text = (text or "").strip()
    if text.lower() in ("", "none"):
        return FaultSpec()
    settings: list[FaultSetting] = []
    taken: set[tuple[str, str]] = set()
    for piece in (piece.strip() for piece in text.split(",")):
        if not piece:
            raise FaultSpecError(f"empty part in fault spec {text!r}")
        part = split_part(piece)
        fault = registry.get(part.name)
        if fault is None:
            raise FaultSpecError(f"unknown fault {part.name!r} in {piece!r}; known: {', '.join(registry.names())}")
        setting = fault.parse(dataclasses.replace(part, usage=f"{part.name} takes {fault.usage}"))
        for direction in setting.directions:
            if (setting.name, direction) in taken:
                raise FaultSpecError(f"fault {setting.name!r} given twice for direction {direction!r} in {text!r}")
            taken.add((setting.name, direction))
        settings.append(setting)
    return FaultSpec(tuple(settings))


def split_part(text: str) -> Part:
    """`down:half_open=4@0.5` -> Part(directions=('down',), name='half_open', value='4', at='0.5')."""
    directions: tuple[str, ...] = DIRECTIONS
    body = text
    if ":" in text:
        where, body = (item.strip() for item in text.split(":", 1))
        if where not in ("up", "down", "both"):
            raise FaultSpecError(f"bad direction {where!r} in {text!r}: use up:, down: or none (both)")
        directions = DIRECTIONS if where == "both" else (where,)
    name, has_value, value = (item.strip() for item in body.partition("="))
    at = None
    if "@" in (value if has_value else name):
        if has_value:
            value, _, at = value.partition("@")
        else:
            name, _, at = name.partition("@")
        name, value, at = name.strip(), value.strip(), at.strip()
    return Part(text, directions, name, value if has_value else None, at, usage="")
