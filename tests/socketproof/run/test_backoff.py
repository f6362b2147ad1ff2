"""--reconnect-backoff: the spec's parse (one-line OptionError), the pure policy's waits, and a
real user's reconnects that wait them (a refused loopback port, the real reference server)."""

from __future__ import annotations

import random
import socket
import statistics
import time

import pytest

from client.errors import SocketproofError
from client.transport import State
from socketproof.run.backoff import Reconnects, delay
from socketproof.run.context import RunContext
from socketproof.run.options import BACKOFF_DEFAULT, OptionError, load_options, parse_backoff
from tests.socketproof.run.test_options import parse
from tests.socketproof.run.test_users import Probe, environment, reference, wait_for

# -- the spec ---------------------------------------------------------------------


def test_specs_parse_to_their_numbers() -> None:
    assert parse_backoff("none").first == 0
    full = parse_backoff("exp:0.5s..30s,jitter=full")
    assert (full.first, full.cap, full.jitter) == (0.5, 30.0, "full")
    assert parse_backoff("exp:250ms..2s").jitter == "full", "jitter full when not given"
    socketio = parse_backoff("exp:1s..5s,jitter=0.5")
    assert (socketio.first, socketio.cap, socketio.jitter, socketio.ratio) == (1.0, 5.0, "ratio", 0.5)
    assert parse_backoff(" exp:1s..5s , jitter=none ").spec == "exp:1s..5s,jitter=none"
    assert load_options(parse()).reconnect_backoff == parse_backoff(BACKOFF_DEFAULT)
    assert load_options(parse("--reconnect-backoff", "none")).reconnect_backoff.first == 0
    assert load_options(parse("--reconnect-backoff", "")).reconnect_backoff.spec == BACKOFF_DEFAULT, \
        "empty (a cleared web UI field) is the default"


@pytest.mark.parametrize(("spec", "says"), [
    ("soon", "expected none or exp:MIN..MAX"),
    ("exp:1..5s", "expected none or exp:MIN..MAX"),
    ("exp:1.2.3s..5s", "expected none or exp:MIN..MAX"),
    ("linear:1s..5s", "expected none or exp:MIN..MAX"),
    ("exp:0s..5s", "needs 0 < MIN <= MAX <= 600s"),
    ("exp:5s..1s", "needs 0 < MIN <= MAX <= 600s"),
    ("exp:1s..601s", "needs 0 < MIN <= MAX <= 600s"),
    ("exp:1s..5s,jitter=half", "jitter is full, none or a ratio in (0, 1], got 'half'"),
    ("exp:1s..5s,jitter=nan", "jitter is full, none or a ratio in (0, 1], got 'nan'"),
    ("exp:1s..5s,jitter=1.5", "jitter is full, none or a ratio in (0, 1], got '1.5'"),
])
def test_a_bad_spec_is_one_line_naming_the_option(spec: str, says: str) -> None:
    with pytest.raises(OptionError) as raised:
        load_options(parse("--reconnect-backoff", spec))
    message = str(raised.value)
    assert message.startswith(f"--reconnect-backoff {spec!r}: ") and says in message and "\n" not in message


# -- the waits --------------------------------------------------------------------


def test_without_jitter_the_waits_double_up_to_the_cap() -> None:
    policy = parse_backoff("exp:0.5s..3s,jitter=none")
    rng = random.Random(1)
    assert [delay(policy, n, rng) for n in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert delay(policy, 10_000, rng) == 3.0, "a huge attempt count neither overflows nor passes the cap"
    assert delay(parse_backoff("none"), 5, rng) == 0.0


def test_full_jitter_spreads_each_wait_over_zero_to_the_doubled_one() -> None:
    policy = parse_backoff("exp:1s..4s,jitter=full")
    rng = random.Random(7)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        waits = [delay(policy, attempt, rng) for _ in range(2000)]
        assert 0 <= min(waits) < 0.05 * ceiling and 0.95 * ceiling < max(waits) <= ceiling
        assert abs(statistics.mean(waits) - ceiling / 2) < 0.05 * ceiling
        assert statistics.pstdev(waits) > 0.25 * ceiling, "spread, not a herd"


def test_a_ratio_randomizes_around_the_wait_like_socketio() -> None:
    policy = parse_backoff("exp:1s..5s,jitter=0.5")
    rng = random.Random(3)
    first = [delay(policy, 0, rng) for _ in range(2000)]
    assert 0.5 <= min(first) < 0.55 and 1.45 < max(first) <= 1.5
    assert max(delay(policy, 3, rng) for _ in range(500)) <= 5.0, "never past the cap"


def test_reconnects_count_failures_and_start_again_once_open() -> None:
    tracker = Reconnects(parse_backoff("exp:1s..8s,jitter=none"), random.Random(0))
    assert tracker.wait(100.0) == 0, "the first connect does not wait"
    tracker.lost(100.0)
    assert tracker.wait(100.0) == 1.0
    tracker.failed(101.0)
    tracker.failed(103.0)
    assert tracker.attempts == 2 and tracker.wait(103.0) == 4.0 and tracker.wait(110.0) == 0
    tracker.opened()
    tracker.lost(200.0)
    assert tracker.attempts == 0 and tracker.wait(200.0) == 1.0, "an open connection resets the count"


# -- a real user --------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (connects are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed_connect(user: Probe) -> float:
    started = time.monotonic()
    with pytest.raises(SocketproofError):
        user.connection()
    return time.monotonic() - started


def test_failed_connects_back_off_and_the_run_stop_ends_the_wait() -> None:
    env = environment(f"ws://127.0.0.1:{closed_port()}", "--reconnect-backoff", "exp:0.3s..0.6s,jitter=none")
    user = Probe(env)
    assert timed_connect(user) < 0.25, "the first connect does not wait"
    assert 0.55 <= timed_connect(user) < 1.0, "after one failure: 0.3s doubled"
    assert 0.55 <= timed_connect(user) < 1.0, "capped at 0.6s"
    assert user.reconnects.attempts == 3
    user.reconnects.failed(time.monotonic())
    RunContext.of(env).state().stopping = True
    started = time.monotonic()
    with pytest.raises(SocketproofError, match="the run is stopping"):
        user.connection()
    assert time.monotonic() - started < 0.1, "no wait past the run's stop"


def test_none_reconnects_at_once() -> None:
    env = environment(f"ws://127.0.0.1:{closed_port()}", "--reconnect-backoff", "none")
    user = Probe(env)
    assert max(timed_connect(user) for _ in range(3)) < 0.25


def test_a_lost_connection_waits_the_first_delay_and_an_open_one_resets_the_count() -> None:
    with reference() as server:
        env = environment(server.ws_url, "--jwt-secret", server.secret,
                          "--reconnect-backoff", "exp:0.4s..2s,jitter=none")
        user = Probe(env)
        old = user.connection()
        user.reconnects.attempts = 3  # as if it had failed before: the open connection resets it
        user.reconnects.opened()
        old.drop()
        wait_for(lambda: old.state is State.CLOSED, what="the drop")
        started = time.monotonic()
        new = user.connection()
        waited = time.monotonic() - started
        assert new.state is State.OPEN and 0.38 <= waited < 1.0, waited
        assert user.reconnects.attempts == 0
        assert user.connection() is new, "an open connection is used without a wait"
        user.on_stop()
