"""The fault layer of the proxy: pure, no sockets, clock and randomness passed in.

Shaped like Toxiproxy's toxics: one small class per fault, in a module of its own named after
it (drop.py, delay_ms.py, ...), with the directions it applies to (`down` = server->client,
`up` = client->server), a probability, a seeded random source and a count of what it did.
Each fault class reads and writes its own part of the spec and registers itself
(registry.py); importing this package imports every module in it, so a new fault is one new
file. `parse_spec("drop=0.2,down:reorder=0.2")` (spec.py) only splits the text and asks the
registry; `ConnectionFaults` (connection.py) builds fresh fault objects for one relayed
connection and is all the relay talks to. The kinds of fault are in base.py.
"""

from socketproof.proxy.faults.base import (
    DIRECTIONS,
    ChanceFault,
    ControlFault,
    Fault,
    FaultSetting,
    FaultSpecError,
    Message,
    MessageFault,
    Pacer,
    Part,
    Scheduled,
    Tally,
    Trigger,
)
from socketproof.proxy.faults.connection import ConnectionFaults
from socketproof.proxy.faults.registry import FAULTS, import_all, register
from socketproof.proxy.faults.spec import FaultSpec, parse_spec, split_part

import_all(__name__, __path__)

__all__ = [
    "DIRECTIONS", "FAULTS", "ChanceFault", "ConnectionFaults", "ControlFault", "Fault", "FaultSetting",
    "FaultSpec", "FaultSpecError", "Message", "MessageFault", "Pacer", "Part", "Scheduled", "Tally", "Trigger",
    "parse_spec", "register", "split_part",
]
