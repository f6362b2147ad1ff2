"""A worker on another machine is not sent to the master's loopback (issue 24, finding 11).

A real master (`--proxy-faults`, so the run's host is the proxy on the master's 127.0.0.1) and a
real worker process started by hand. The worker stands for one on another machine: its loopback
identity (socketproof.target.loopback.identity, boot id and network namespace) is replaced before Locust
starts, the one thing a second machine would change. A listener on the worker's "own" loopback
cannot be told apart here, so the proof is that no user of the worker connected at all.

Before: the worker ran its users against ws://127.0.0.1:PORT, the master's proxy address.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.socketproof.support import ROOT, clean_environment, run_locust
from tests.user.support import free_port, stop_group

ELSEWHERE = (
    "import sys, locust.main, socketproof.target.loopback as l; l.identity = lambda: 'another-machine'; "
    "sys.argv = ['locust'] + sys.argv[1:]; sys.exit(locust.main.main())"
)


def test_a_worker_on_another_loopback_refuses_the_masters_proxy_and_the_run_exits_2(tmp_path: Path) -> None:
    port = free_port()
    worker_log = tmp_path / "worker.log"
    with worker_log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-c", ELSEWHERE, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=ROOT, env=clean_environment(None), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            run = run_locust(["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                              "--expect-workers", "1", "--proxy-faults", "none", "--users", "2", "--spawn-rate", "2",
                              "--run-time", "10s"], tmp_path / "reports")
        finally:
            stop_group(worker, grace=15)
    text = worker_log.read_text()
    assert run.returncode == 2, run.describe() + text[-3000:]
    assert "refused the run" in run.stderr and "master's loopback" in run.stderr, run.describe()
    assert "master's loopback" in text, text[-3000:]
    stats = (tmp_path / "reports" / "stats_stats.csv")
    connects = [line for line in stats.read_text().splitlines() if ",connect," in line] if stats.exists() else []
    assert all(line.split(",")[3] == "0" for line in connects), connects  # no connect succeeded from the worker
    assert not run.leftovers
