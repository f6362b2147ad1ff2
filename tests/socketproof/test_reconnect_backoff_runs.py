"""--reconnect-backoff in real headless runs: 60 chat users, the embedded server restarted under
them (--disrupt 6s:restart), the storm read from checks.json and drawn in recovery.png.

The same exponential policy twice: without jitter every identity waits exactly 4 s after the
loss and they come back as one herd (nearly all in one or two seconds); with full jitter each
waits a random 0..4 s (longer after a failed try) and the storm is spread over more seconds
with a clearly lower peak. A bad spec is exit 2 with one line naming the option.
"""

from __future__ import annotations

import struct

import pytest

from tests.socketproof.support import LocustRun, RunPool

USERS = 60
DRILL = ["-u", str(USERS), "-r", str(USERS), "-t", "22s", "--identities", str(USERS), "--send-interval", "0.2",
         "--disrupt", "6s:restart", "ChatUser"]
POLICY = "exp:4s..8s"
FIGURES: dict[str, dict] = {}
"""Each run's storm, printed side by side at the end of the module (the figures to report)."""


@pytest.fixture(scope="module")
def runs(locust_runs: RunPool) -> RunPool:
    locust_runs.start("backoff-herd", [*DRILL, "--reconnect-backoff", f"{POLICY},jitter=none"])
    locust_runs.start("backoff-jitter", [*DRILL, "--reconnect-backoff", f"{POLICY},jitter=full"])
    locust_runs.start("backoff-bad", ["-u", "1", "-r", "1", "-t", "3s", "--reconnect-backoff", "exp:5s..1s"],
                      timeout=60)
    return locust_runs


def storm(run: LocustRun) -> dict:
    """The restart's figures from checks.json, with the seconds that had connects and the most
    connects any two adjacent seconds had."""
    assert run.returncode == 0, run.describe()
    recovery = run.verdicts["recovery"]
    assert recovery["valid"] is True, recovery
    [drill] = recovery["stats"]["disruptions"]
    per_second = drill["storm_per_s"]
    assert drill["never_back_count"] == 0 and drill["identities_lost"] == USERS, drill
    figures = {"lost": drill["identities_lost"], "connects": drill["storm_connects"],
               "peak": drill["storm_peak_per_s"], "seconds": sum(1 for n in per_second if n),
               "best_two_seconds": max(a + b for a, b in zip(per_second, per_second[1:])),
               "back_p95": drill["recovery_s"]["p95"], "per_second": per_second}
    FIGURES[run.report_dir.name] = figures
    return figures


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is no PNG"
    return struct.unpack(">II", data[16:24])


def test_without_jitter_the_clients_come_back_as_one_herd(runs: RunPool) -> None:
    herd = storm(runs.result("backoff-herd"))
    assert herd["connects"] >= 0.9 * USERS, herd
    assert herd["best_two_seconds"] >= 0.9 * herd["connects"], f"not one herd: {herd}"
    assert herd["peak"] >= 0.6 * USERS, herd


def test_with_full_jitter_the_storm_is_spread(runs: RunPool) -> None:
    herd = storm(runs.result("backoff-herd"))
    spread = storm(runs.result("backoff-jitter"))
    print(f"\nstorm after 6s:restart, {USERS} users, {POLICY}: "
          + "; ".join(f"{name}: peak {f['peak']}/s over {f['seconds']} s {f['per_second']}, back p95 {f['back_p95']}s"
                      for name, f in sorted(FIGURES.items())))
    assert spread["connects"] >= 0.9 * USERS, spread
    assert spread["peak"] <= 0.6 * herd["peak"], f"jitter: {spread}\nherd: {herd}"
    assert spread["seconds"] >= herd["seconds"] + 2, f"jitter: {spread}\nherd: {herd}"
    assert spread["best_two_seconds"] < 0.85 * spread["connects"], spread


def test_each_run_draws_its_storm_next_to_checks_json(runs: RunPool) -> None:
    for name in ("backoff-herd", "backoff-jitter"):
        run = runs.result(name)
        plot = run.report_dir / "recovery.png"
        assert plot.exists(), run.describe()
        width, height = png_size(plot)
        assert width >= 600 and height >= 300
        assert str(plot) in run.stdout, "the plot is listed with the other reports"


def test_a_bad_policy_is_exit_2_naming_the_option(runs: RunPool) -> None:
    run = runs.result("backoff-bad")
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert errors == ["locust: error: --reconnect-backoff 'exp:5s..1s': needs 0 < MIN <= MAX <= 600s"], errors
    assert "Traceback" not in run.stderr
