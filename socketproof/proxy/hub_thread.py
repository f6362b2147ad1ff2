"""A gevent server for plain threads: a daemon thread that runs its own gevent hub.

    hub = HubThread("socketproof-proxy", setup=server.start, teardown=server.stop)
    url = hub.start()          # setup() ran on the new hub; its result, or RuntimeError
    hub.call(server.counts)    # run on that hub (gevent objects belong to their hub's thread)
    hub.stop()                 # teardown() on the hub, then the thread ends

The fault proxy's `FaultProxy` (control.py) runs on one; so does the TCP fault proxy of the
tests (tests/support/faultproxy.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class HubThread(Generic[T]):
    """See the module docstring; `timeout` bounds the start, each call and the stop."""

    def __init__(self, name: str, setup: Callable[[], T], teardown: Callable[[], object],
                 timeout: float = 10.0) -> None:
        self.name = name
        self.setup = setup
        self.teardown = teardown
        self.timeout = timeout
        self.thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._hub: Any = None
        self._stop: Any = None
        self._result: T | None = None
        self._error: BaseException | None = None

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, timeout: float | None = None) -> T:
        """Start the thread; returns what setup() returned there, or RuntimeError (its error, or none in time)."""
        timeout = self.timeout if timeout is None else timeout
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name} did not start within {timeout:g}s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} did not start: {self._error}") from self._error
        return self._result  # type: ignore[return-value]

    def _main(self) -> None:
        import gevent
        import gevent.event

        try:
            self._hub = gevent.get_hub()
            self._stop = gevent.event.Event()
            self._result = self.setup()
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self._stop.wait()
        try:
            self.teardown()
        finally:
            gevent.sleep(0.01)  # let what teardown() killed finish on this hub

    def stop(self) -> bool:
        """teardown() on the hub and wait for the thread; False when it is still running after `timeout`."""
        if not self.alive:
            return True
        self._hub.loop.run_callback_threadsafe(self._stop.set)
        assert self.thread is not None
        self.thread.join(self.timeout)
        return not self.thread.is_alive()

    def call(self, fn: Callable[[], Any], wait: bool = True) -> Any:
        """Run `fn` on the hub and return its result (its error re-raised); with wait=False, return at once."""
        if threading.current_thread() is self.thread:
            return fn()
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                box["error"] = error
            finally:
                done.set()

        self._hub.loop.run_callback_threadsafe(run)
        if not wait:
            return None
        if not done.wait(self.timeout):
            raise RuntimeError(f"{self.name} did not answer within {self.timeout:g}s")
        if "error" in box:
            raise box["error"]
        return box.get("value")
