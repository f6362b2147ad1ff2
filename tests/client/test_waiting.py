"""client/waiting.py: one request's wake-up, under real gevent (this process is monkey-patched by
tests/conftest.py) and, in a child interpreter, under plain threads before and after a patch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import gevent
import pytest
from gevent import get_hub, getcurrent

from client.waiting import GreenSlot, Slot, gevent_patched, new_slot

ROOT = Path(__file__).resolve().parents[2]
SlotLike = Slot | GreenSlot


def green_slot() -> GreenSlot:
    return GreenSlot(get_hub(), getcurrent())


KINDS: dict[str, Callable[[], SlotLike]] = {"Slot": Slot, "GreenSlot": green_slot}


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[[], SlotLike]:
    return KINDS[request.param]


def test_a_fresh_slot_is_empty(make: Callable[[], SlotLike]) -> None:
    slot = make()
    assert (slot.reply, slot.error, slot.t_recv, slot.length) == (None, None, 0.0, 0)


def test_wait_without_release_times_out(make: Callable[[], SlotLike]) -> None:
    slot = make()
    get_hub().loop.update_now()  # gevent's timers count from the loop's cached time
    t0 = time.monotonic()
    assert slot.wait(0.05) is False
    assert time.monotonic() - t0 >= 0.04


def test_a_release_from_another_greenlet_wakes_the_waiter_with_what_it_set(make: Callable[[], SlotLike]) -> None:
    slot = make()

    def answer() -> None:
        slot.reply = "pong"
        slot.length = 4
        slot.release()

    gevent.spawn_later(0.02, answer)
    t0 = time.monotonic()
    assert slot.wait(5.0) is True
    assert time.monotonic() - t0 < 2.0
    assert (slot.reply, slot.length) == ("pong", 4)


def test_a_release_before_the_wait_returns_at_once(make: Callable[[], SlotLike]) -> None:
    slot = make()
    slot.release()
    t0 = time.monotonic()
    assert slot.wait(5.0) is True
    assert time.monotonic() - t0 < 1.0


def test_a_second_release_raises_runtime_error(make: Callable[[], SlotLike]) -> None:
    slot = make()
    slot.release()
    with pytest.raises(RuntimeError):
        slot.release()


def test_bad_timeouts_are_refused_as_a_lock_refuses_them() -> None:
    slot = green_slot()  # Slot's real lock: in the unpatched child below
    with pytest.raises(ValueError):
        slot.wait(-2.0)  # (-1 is a lock's 'no timeout')
    with pytest.raises(OverflowError):
        slot.wait(threading.TIMEOUT_MAX * 2)


def test_a_release_after_the_timeout_wakes_nobody() -> None:
    slot = green_slot()
    assert slot.wait(0.01) is False
    slot.release()  # too late: must not switch into this greenlet's next wait
    t0 = time.monotonic()
    gevent.sleep(0.1)
    assert time.monotonic() - t0 >= 0.09
    assert slot.wait(0.01) is True  # released is released


def test_a_waiter_killed_meanwhile_is_not_woken_by_a_later_release() -> None:
    woken: list[bool] = []

    def waiter() -> None:
        slot_box.append(green_slot())
        woken.append(slot_box[0].wait(10.0))

    slot_box: list[GreenSlot] = []
    g = gevent.spawn(waiter)
    gevent.sleep(0.01)
    g.kill()
    slot_box[0].release()
    gevent.sleep(0.02)
    assert g.dead and woken == []


def test_new_slot_is_green_in_a_greenlet_and_plain_in_the_hub() -> None:
    assert gevent_patched() is not None  # tests/conftest.py patched this process
    assert isinstance(new_slot(), GreenSlot)
    assert isinstance(gevent.spawn(new_slot).get(timeout=5), GreenSlot)
    in_hub: list[SlotLike] = []
    get_hub().loop.run_callback(lambda: in_hub.append(new_slot()))
    gevent.sleep(0.01)
    assert len(in_hub) == 1 and type(in_hub[0]) is Slot


UNPATCHED = textwrap.dedent("""
    import threading, time
    from client.waiting import Slot, gevent_patched, new_slot

    assert gevent_patched() is None
    slot = new_slot()
    assert type(slot) is Slot, slot
    assert slot.wait(0.02) is False
    threading.Timer(0.02, slot.release).start()  # a real OS thread wakes it
    assert slot.wait(5.0) is True
    for bad, error in ((-2.0, ValueError), (threading.TIMEOUT_MAX * 2, OverflowError)):
        try:
            Slot().wait(bad)
        except error:
            pass
        else:
            raise AssertionError(f"wait({bad}) did not raise {error.__name__}")

    from gevent import monkey
    monkey.patch_all()
    import gevent
    from client.waiting import GreenSlot
    assert gevent_patched() is not None
    assert type(gevent.spawn(new_slot).get(timeout=5)) is GreenSlot  # noticed once patched
    print("ok")
""")


def test_without_gevent_patched_slots_are_plain_until_it_patches() -> None:
    done = subprocess.run([sys.executable, "-c", UNPATCHED], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
