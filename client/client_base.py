"""What every part of the client reads: one connection's attributes and the state they give.

`Client` (client/client.py) is three parts over these attributes: its life (connect,
close), what arrives (client/receiving.py) and what its caller sends
(client/operations.py). They are declared here, not created: `Client.__init__` sets them,
and the per-connection ones are made on first use (a Locust process holds thousands of
idle clients, so nothing here adds to one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from client.adapter import Adapter, AdapterSession, Delivery, Frame, Ready
from client.errors import ConnectionClosed
from client.inbox import Inbox
from client.recording import Recording
from client.reporting import Reporter
from client.transport import State, Transport
from client.waiting import GreenSlot, Slot

LOCK = threading.Lock()
"""Guards every client's connect/close/inbox moves: none waits inside it, so one lock
serves all and an idle client carries none of its own."""


class ClientBase:
    """The attributes `Client` sets, and what its parts derive from them."""

    adapter: Adapter
    label: str
    timeout: float
    ready: Ready | None
    on_delivery: Callable[[Delivery], None] | None
    on_push: Callable[[Any], None] | None
    _recording: Recording | None
    _reporter: Reporter
    _session: AdapterSession | None
    _transport: Transport | None
    _pending: dict[Any, Slot | GreenSlot] | None  # requests waiting for their reply
    _inbox: Inbox | None
    _start_slot: Slot | GreenSlot | None
    _early: list[Any] | None  # events before Ready, recorded once the connection is opened

    @property
    def state(self) -> State:
        """OPEN only once start-up completed; CONNECTING until then."""
        transport = self._transport
        if transport is None:
            return State.CLOSED
        state = transport.state
        if state is State.OPEN and self.ready is None:
            return State.CONNECTING
        return state

    @staticmethod
    def _send(transport: Transport | None, frame: Frame) -> None:
        if transport is None:
            raise ConnectionClosed(None, "not connected")
        transport.send(frame)

    def _close_info(self) -> ConnectionClosed:
        transport = self._transport
        return transport.close_info if transport is not None else ConnectionClosed(None, "not connected")
