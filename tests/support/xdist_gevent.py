"""pytest-xdist workers under gevent's monkey patch.

An xdist worker talks to the controller through execnet: a reader on a real OS thread (started
before any test module is imported) hands test items to the main thread through an Event and
a lock that execnet creates later, from whatever `threading` is by then. tests/conftest.py (and
Locust, on import) patch `threading` with gevent, so those become gevent primitives: set from
the OS thread, waited on in the main thread's hub, which has nothing else to run, and the
worker dies with `LoopExit: This operation would block forever` before its first test.

`use_os_threads_for_execnet()` makes execnet's thread model build them from the original,
unpatched `_thread` locks instead. Only execnet's own Event and locks change; the tests still
run fully patched, as under Locust.
"""

from __future__ import annotations

from typing import Any

from gevent import monkey

_allocate_lock = monkey.get_original("_thread", "allocate_lock")
_RLock = monkey.get_original("_thread", "RLock")


class OSThreadEvent:
    """threading.Event's interface on OS locks: safe between an OS thread and the main thread."""

    def __init__(self) -> None:
        self._flag = False
        self._mutex = _allocate_lock()
        self._waiters: list[Any] = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._mutex:
            self._flag = True
            for waiter in self._waiters:
                waiter.release()
            self._waiters.clear()

    def clear(self) -> None:
        with self._mutex:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._mutex:
            if self._flag:
                return True
            waiter = _allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
        woken = waiter.acquire(True, -1 if timeout is None else timeout)
        if not woken:
            with self._mutex:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return woken or self._flag


def use_os_threads_for_execnet() -> None:
    """Give execnet's thread model OS-level Event and locks (see the module's docstring)."""
    import execnet.gateway_base as gateway_base

    model: Any = gateway_base.ThreadExecModel
    model.Event = lambda self: OSThreadEvent()
    model.Lock = model.RLock = lambda self: _RLock()
