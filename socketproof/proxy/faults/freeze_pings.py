"""`freeze_pings` or `freeze_pings@P`: pings and pongs are swallowed."""

from __future__ import annotations

from socketproof.proxy.faults.base import ControlFault
from socketproof.proxy.faults.registry import register


@register
class FreezePings(ControlFault):
    """Ping and pong frames are swallowed (the connection looks alive to nobody)."""

    name = "freeze_pings"
    usage = "freeze_pings or freeze_pings@P"
    order = 130

    def forward(self, direction: str) -> bool:
        if self.applies(direction) and self.chance():
            self.did(direction)
            return False
        return True
