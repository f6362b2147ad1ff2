"""socketproof/target/run_length.py: the short-run warning, from a welcome and a run time (and the
pre-flight that reads the welcome from a real server)."""

from __future__ import annotations

from typing import Any

import pytest

from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import LoadOptions
from socketproof.target import preflight
from socketproof.target.run_length import warning
from tests.support.server import running_server


def welcome(interval: Any) -> dict[str, Any]:
    return {"type": "welcome", "heartbeat": {"interval": interval, "timeout": 10}}


def test_a_run_shorter_than_two_intervals_is_told_once_with_both_numbers() -> None:
    assert warning(welcome(20), 20.0) == "heartbeat needs a run of at least 40 s to give a verdict; this run is 20 s"
    assert warning(welcome(0.5), 1.0) == "heartbeat needs a run of at least 1 s to give a verdict; this run is 1 s"


@pytest.mark.parametrize("run_time", [41.0, 60.0, None, 0])
def test_long_or_endless_runs_are_fine(run_time: float | None) -> None:
    assert warning(welcome(20), run_time) is None


@pytest.mark.parametrize("interval", [None, 0, -1, "20", True])
def test_no_usable_interval_means_no_warning(interval: Any) -> None:
    assert warning(welcome(interval), 10.0) is None
    assert warning({"type": "welcome"}, 10.0) is None


def test_preflight_reads_the_interval_from_a_real_welcome() -> None:
    with running_server(heartbeat_interval=3, heartbeat_timeout=1) as server:
        host = server.ws_url.removesuffix("/ws")
        options = LoadOptions(jwt_secret=server.secret)
        adapter = build_run_adapter(None, options)
        short = preflight.check(host, options, adapter=adapter, run_time=5.0)
        assert short is not None and not short.fatal
        assert short.message == "heartbeat needs a run of at least 6 s to give a verdict; this run is 5 s"
        assert preflight.check(host, options, adapter=adapter, run_time=7.0) is None
        assert preflight.check(host, options, adapter=adapter) is None
