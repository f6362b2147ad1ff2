"""Patch with gevent before anything imports `ssl`; the session's one RabbitMQ.

Locust patches the standard library with gevent when it is imported, and some test module
always imports it, so every test of a full run already runs patched; but by then `ssl` may
have been imported unpatched (websocket-client, an ASGI test app's anyio), and Locust's own
SSL context then recurses forever at import. Patching first makes a partial run the same as
a full one. Under pytest-xdist (`-n`, pyproject.toml) each worker is a session of its own;
tests/support/xdist_gevent.py keeps execnet's hand-over working under the patch.

`rabbitmq` and `broker` are here so that every broker test (tests/client/adapters/, the STOMP
and MQTT runs) shares one private broker per session (per xdist worker that runs one) rather
than starting one per module.
"""

from __future__ import annotations

import os
import sys

from gevent import monkey

monkey.patch_all()
# An xdist worker is execnet's `python -c` child. PYTEST_XDIST_WORKER alone is not enough: a
# test that runs pytest again (the README's core-suite command) passes it on to a controller,
# where execnet's threads are greenlets and OS locks would deadlock them.
if os.environ.get("PYTEST_XDIST_WORKER") and sys.argv[:1] == ["-c"]:
    from tests.support.xdist_gevent import use_os_threads_for_execnet

    use_os_threads_for_execnet()

from collections.abc import Iterator  # noqa: E402  (after the patch, as said above)
from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from tests.support.rabbitmq import RabbitMQ


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """One private RabbitMQ for the whole session (tests/support/rabbitmq.py): a start costs ~10 s,
    so the first test that asks starts it and the session's end stops it; the stop fails on a
    process or port left behind, and on a connection still open."""
    from tests.support.rabbitmq import running_rabbitmq

    with running_rabbitmq() as handle:
        yield handle
        assert handle.wait_connections(0) == 0, f"connections left at the session's end: {handle.list_channels()}"


@pytest.fixture
def broker(rabbitmq: RabbitMQ) -> Iterator[RabbitMQ]:
    """The session's RabbitMQ with no client connection open when a test starts or ends, so a
    test's connection counts (and a run's cleanup before/after) are its own."""
    assert rabbitmq.wait_connections(0) == 0, f"connections open before the test: {rabbitmq.list_channels()}"
    yield rabbitmq
    assert rabbitmq.wait_connections(0) == 0, f"connections left by the test: {rabbitmq.list_channels()}"
