"""The server restarts mid-run (its memory is gone): Locust users reconnect when it is back,
the run does not crash, and what the restart lost is reported, never passed silently."""

from __future__ import annotations

import time
from pathlib import Path

from server.process import ServerProcess
from tests.reliability.locustrun import start_locust
from tests.support.faultproxy import FaultProxy

SETTINGS = {"heartbeat_interval": 1, "heartbeat_timeout": 1}


def address(child: ServerProcess) -> tuple[str, int]:
    host, port = child.http_url.split("//")[1].rsplit(":", 1)
    return host, int(port)


def test_restart_mid_run_is_survived_and_its_losses_are_reported(tmp_path: Path) -> None:
    first, second = ServerProcess(SETTINGS), ServerProcess(SETTINGS)
    first.start()
    try:
        with FaultProxy(address(first)) as proxy:  # one stable --host across the restart
            run = start_locust(proxy.url, tmp_path, seconds=14, users=12, extra=("--strict",))
            try:
                time.sleep(5)
                assert first.stop() == 0  # closes every connection with 1001; memory gone
                time.sleep(1)  # users find nothing to connect to meanwhile
                second.start()
                proxy.retarget(address(second))
                code, output = run.wait(timeout=120)
            finally:
                run.stop()
    finally:
        first.kill()
        second.stop()
    assert "Traceback" not in output, output[-5000:]
    requests = run.requests()
    assert int(requests["connect"]["Failure Count"]) > 0  # the server was really away
    checks = run.checks()
    verdicts = {v["name"]: v for v in checks["verdicts"]}
    assert verdicts["ordering"]["valid"] is True and verdicts["duplicates"]["valid"] is True, (
        verdicts["ordering"],
        verdicts["duplicates"],
    )
    loss = verdicts["loss"]
    # Messages that lived only in the first server's memory: a loss (False), or seqs that
    # restarted so acks cannot be judged (unknown, with the users named), or an announced
    # gap (resumed:false) counted in `announced`. Never a plain pass with nothing said.
    if loss["valid"] is True:
        assert loss["stats"]["announced"] > 0, loss
    else:
        assert loss["valid"] is False or loss["stats"]["seq_reset_channels"], loss
        # --strict: an unknown verdict fails the run, so the restart cannot pass unnoticed.
        assert checks["exit_code"] == 1 and code == 1, output[-3000:]
