"""hub_thread.py: a gevent server on its own hub thread, driven from a plain thread."""

from __future__ import annotations

import pytest

from socketproof.proxy.hub_thread import HubThread


def test_start_call_and_stop_run_on_the_hub_thread() -> None:
    seen: list[str] = []

    def setup() -> str:
        import gevent

        seen.append("setup")
        gevent.sleep(0)  # gevent works there
        return "ready"

    hub = HubThread("test-hub", setup, lambda: seen.append("teardown"), timeout=5)
    assert hub.start() == "ready" and hub.alive
    assert hub.call(lambda: 41 + 1) == 42
    with pytest.raises(KeyError):
        hub.call(lambda: {}["missing"])
    hub.call(lambda: seen.append("later"), wait=False)
    assert hub.stop() and not hub.alive
    assert seen == ["setup", "later", "teardown"]
    assert hub.stop()  # a second stop is a no-op


def test_a_setup_error_is_the_start_error() -> None:
    def setup() -> None:
        raise OSError("address in use")

    hub = HubThread("test-hub", setup, lambda: None, timeout=5)
    with pytest.raises(RuntimeError, match="test-hub did not start: address in use"):
        hub.start()
