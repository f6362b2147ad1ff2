"""Waiting for one reply: the per-request wake-up of the client's request path.

`Slot` is for plain threads (tests); `GreenSlot` for gevent (Locust), where a lock and a
gevent.Timeout per request would cost more than the rest of the request path together.
`new_slot()` picks the right one for the calling thread or greenlet.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


class Slot:
    """One pending request: a lock held until the receive loop hands over the reply
    (cheaper than an Event). For plain threads; see GreenSlot for gevent."""

    __slots__ = ("lock", "reply", "error", "t_recv", "length")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.reply: Any = None
        self.error: BaseException | None = None
        self.t_recv = 0.0
        self.length = 0

    def wait(self, timeout: float) -> bool:
        """True once released (reply or error set), False after `timeout` seconds."""
        return self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        """Wake the waiter (once: a second call raises RuntimeError)."""
        self.lock.release()


class GreenSlot:
    """A pending request under gevent (Locust): the waiting greenlet parks in the hub with
    one raw loop timer, and `release()` schedules its wake-up. Same contract as Slot, but
    no semaphore and no gevent.Timeout per request: this is the per-message path of every
    Locust user. Used only from the hub's own thread (gevent sockets are too)."""

    __slots__ = ("reply", "error", "t_recv", "length", "_hub", "_owner", "_greenlet", "_released")

    def __init__(self, hub: Any, owner: Any) -> None:
        self.reply: Any = None
        self.error: BaseException | None = None
        self.t_recv = 0.0
        self.length = 0
        self._hub = hub
        self._owner = owner  # the requesting greenlet
        self._greenlet: Any = None  # the owner, only while it waits
        self._released = False

    def wait(self, timeout: float) -> bool:
        if self._released:
            return True
        if timeout < 0:  # what threading's (and gevent's) Lock.acquire says
            raise ValueError("timeout value must be strictly positive")
        if timeout > threading.TIMEOUT_MAX:
            raise OverflowError("timeout value is too large")
        hub = self._hub
        greenlet = self._greenlet = self._owner
        timer = hub.loop.timer(timeout)
        timer.start(greenlet.switch, False)
        try:
            return hub.switch()  # True from _wake(), False from the timer
        finally:
            timer.close()
            self._greenlet = None

    def release(self) -> None:
        if self._released:
            raise RuntimeError("release unlocked lock")  # as Slot does
        self._released = True
        if self._greenlet is not None:
            self._hub.loop.run_callback(self._wake)

    def _wake(self) -> None:
        greenlet = self._greenlet
        if greenlet is not None:  # still waiting (not timed out or killed meanwhile)
            greenlet.switch(True)


def gevent_patched() -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    """(get_hub, getcurrent) when gevent has monkey-patched `threading` (Locust), else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    from gevent import get_hub, getcurrent

    return get_hub, getcurrent


_GREEN = None
_GREEN_CHECKED = False


def new_slot() -> Slot | GreenSlot:
    """A slot for the caller: GreenSlot in a greenlet under a patched `threading`, else Slot."""
    global _GREEN, _GREEN_CHECKED
    if not _GREEN_CHECKED:
        _GREEN = gevent_patched()
        _GREEN_CHECKED = _GREEN is not None  # re-check until gevent patches (Locust imports it late)
    green = _GREEN
    if green is None:
        return Slot()
    hub, current = green[0](), green[1]()
    return GreenSlot(hub, current) if current is not hub else Slot()
