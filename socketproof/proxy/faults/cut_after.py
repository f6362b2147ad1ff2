"""`cut_after=N` (data frames) or `cut_after=Ns` (seconds): the TCP connection is cut."""

from __future__ import annotations

from socketproof.proxy.faults.base import Trigger
from socketproof.proxy.faults.registry import register


@register
class CutAfter(Trigger):
    """The TCP connection is closed on both sides, with no close frame (peers see 1006)."""

    name = "cut_after"
    usage = "cut_after=N (data frames) or cut_after=Ns (seconds)"
    order = 110
    cuts = True
