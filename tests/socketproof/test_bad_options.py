"""Bad Socketproof options end `locust` with exit code 2 and one line naming the option, before any run."""

from __future__ import annotations

import pytest

from tests.socketproof.support import LocustRun, RunPool

BAD = [
    (["--tabs", "0"], "--tabs must be between 1 and 100, got 0"),
    (["--reconnect-probability", "2"], "--reconnect-probability must be between"),
    (["--reconnect-probability", "nan"], "--reconnect-probability must be between"),
    (["--threshold", "echo:p95<<5"], "--threshold: bad threshold 'echo:p95<<5'"),
    (["--checks", "nonsense"], "unknown check 'nonsense' in --checks"),
    (["--drain", "inf"], "--drain must be between"),
    # argparse's own type check: its message, its exit code 2.
    (["--send-interval", "abc"], "argument --send-interval: invalid float value: 'abc'"),
]
QUICK = ["-u", "1", "-r", "1", "-t", "3s"]
"""If validation let a bad value through, the run would end by itself (exit 0) and fail the test."""


def name(argv: list[str]) -> str:
    return "bad-" + str(next(i for i, (bad, _) in enumerate(BAD) if bad == argv))


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    for argv, _ in BAD:
        locust_runs.start(name(argv), [*QUICK, *argv], timeout=60)
    return locust_runs


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(argv) for argv, _ in BAD])
def test_bad_option_exits_2_with_one_line(runs: RunPool, argv: list[str], message: str) -> None:
    run: LocustRun = runs.result(name(argv))
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, run.describe()
    # "locust: error: ..." (ours), "<prog>: error: argument ..." (argparse; prog is __main__.py under -m)
    assert ": error: " in errors[0] and message in errors[0], errors[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert "started the embedded reference server" not in run.stderr, "no server for a run that cannot start"
    assert not (run.report_dir / "checks.json").exists(), "the run must stop before any user starts"
    assert not run.leftovers
