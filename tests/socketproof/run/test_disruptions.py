"""The --disrupt parser and the `run` action's command runner."""

from __future__ import annotations

import logging

import pytest

from socketproof.run.disruptions import parse_at, parse_disruption, parse_disruptions, run_command
from socketproof.run.options import OptionError


@pytest.mark.parametrize("text,seconds", [("15s", 15), ("1m30s", 90), ("2m", 120), ("1h", 3600), ("0.5s", 0.5)])
def test_at(text: str, seconds: float) -> None:
    assert parse_at(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "s", "1m30", "-5s", "ms"])
def test_bad_at(text: str) -> None:
    assert parse_at(text) is None


def test_actions() -> None:
    assert parse_disruption("20s:run ./deploy.sh --fast").command == "./deploy.sh --fast"
    assert parse_disruption("1m:restart").at == 60 and parse_disruption("1m:restart").action == "restart"
    assert parse_disruption("5s:cut").action == "cut"
    pause = parse_disruption("5s:pause=3s")
    assert (pause.action, pause.seconds, pause.name) == ("pause", 3.0, "5s pause")
    assert parse_disruption("5s:run a:b").command == "a:b"


@pytest.mark.parametrize("spec,words", [
    ("restart", "expected AT:ACTION"), ("soon:restart", "expected AT:ACTION"), ("5s:reboot", "unknown action"),
    ("5s:run", "run needs a command"), ("5s:pause=0s", "pause needs seconds"), ("5s:pause=3", "pause needs seconds"),
])
def test_bad_specs_name_the_option(spec: str, words: str) -> None:
    with pytest.raises(OptionError, match=words) as error:
        parse_disruption(spec)
    assert str(error.value).startswith("--disrupt ")


def test_requirements() -> None:
    assert [d.at for d in parse_disruptions(["9s:cut", "2s:restart"], embedded=True, proxy=True)] == [2, 9]
    with pytest.raises(OptionError, match="--proxy-faults"):
        parse_disruptions(["2s:pause=1s"], embedded=True, proxy=False)
    with pytest.raises(OptionError, match="embedded reference server"):
        parse_disruptions(["2s:restart"], embedded=False, proxy=True)
    assert parse_disruptions(["2s:run true"], embedded=False, proxy=False)[0].action == "run"


def test_run_command_logs_lines_and_returns_exit_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="socketproof"):
        assert run_command("echo one; echo two >&2; exit 3", "disrupt 2s run:", 10) == 3
    assert "disrupt 2s run: one" in caplog.text and "disrupt 2s run: two" in caplog.text


def test_run_command_timeout_kills_it() -> None:
    assert run_command("sleep 30", "x:", 0.5) is None


def test_worker_reports_count_failures_in_a_window_only() -> None:
    import time

    from socketproof.run.disruptions import Schedule, Targets, parse_disruption

    schedule = Schedule([parse_disruption("1s:restart")], Targets())
    schedule._records = {"1s:restart": {"started_at": None, "ended_at": None}}
    schedule.on_worker_report({"stats_total": {"num_failures": 4}})
    assert schedule.failures_during == 0  # not started yet
    now = time.time()
    schedule._records["1s:restart"].update(started_at=now - 1, ended_at=now - 0.5)
    schedule.on_worker_report({"stats_total": {"num_failures": 4}})
    schedule.on_worker_report({"stats_total": {"num_failures": "x"}})
    assert schedule.failures_during == 4
    schedule._records["1s:restart"].update(started_at=now - 60, ended_at=now - 50)
    schedule.on_worker_report({"stats_total": {"num_failures": 3}})
    assert schedule.failures_during == 4  # long after the storm: a failure of its own
