"""The OS-lock Event that keeps pytest-xdist workers alive under gevent (tests/support/xdist_gevent.py)."""

from __future__ import annotations

import time

from gevent import monkey

from tests.support.xdist_gevent import OSThreadEvent

start_os_thread = monkey.get_original("_thread", "start_new_thread")


def test_set_from_an_os_thread_wakes_the_main_thread() -> None:
    """The case a patched Event fails with LoopExit: the setter is a real thread, not a greenlet,
    and the wait has no timeout (as xdist's), so the main hub has nothing to run. The thread
    always sets, so this cannot hang."""
    event = OSThreadEvent()
    start_os_thread(lambda: (time.sleep(0.05), event.set()), ())
    assert event.wait() is True and event.is_set()


def test_wait_times_out_and_clear_resets() -> None:
    event = OSThreadEvent()
    began = time.monotonic()
    assert event.wait(0.05) is False
    assert 0.04 <= time.monotonic() - began < 2.0
    event.set()
    assert event.wait(0) is True
    event.clear()
    assert not event.is_set() and event.wait(0.01) is False
