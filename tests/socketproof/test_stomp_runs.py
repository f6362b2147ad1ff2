"""`locust --protocol stomp` against a real RabbitMQ with web-stomp (tests/support/rabbitmq.py, one
private broker for the module; skips when rabbitmq-server is not installed): a clean run passes
ordering, duplicates and loss (heartbeat
UNKNOWN: client/adapters/stomp.py says why); the fault proxy's drop, duplicate and reorder each fail
their check with evidence; a wrong passcode ends the run at the pre-flight (exit 2, one line).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.socketproof.support import LocustRun, run_locust
from tests.support.rabbitmq import RabbitMQ, running_rabbitmq


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitMQ]:
    with running_rabbitmq() as handle:
        yield handle


def base_url(broker: RabbitMQ) -> str:
    return broker.stomp_url.rsplit("/ws", 1)[0]


def stomp_run(broker: RabbitMQ, report_dir: Path, *extra: str, passcode: str | None = None,
              host: str | None = None) -> LocustRun:
    args = [
        "-f", "locustfiles", "-t", "10s", "-u", "10", "-r", "10", "--stop-timeout", "5",
        "--protocol", "stomp", "--host", host or base_url(broker), "--ws-path", "/ws",
        "--stomp-login", broker.user, *extra,
    ]
    env = {"SOCKETPROOF_STOMP_PASSCODE": broker.password if passcode is None else passcode}
    run = run_locust(args, report_dir, env=env)
    assert not run.leftovers, run.describe()
    return run


def test_clean_run_passes(broker: RabbitMQ, tmp_path: Path) -> None:
    run = stomp_run(broker, tmp_path / "clean")
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.verdicts[check], run.describe())
    assert run.verdicts["heartbeat"]["valid"] == "unknown", run.verdicts["heartbeat"]  # not judged: see the adapter
    assert run.stats["publish"]["num_requests"] > 0 and run.stats["publish"]["num_failures"] == 0, run.stats
    assert run.stats["deliver"]["num_requests"] > 0
    assert run.returncode == 0, run.describe()
    assert broker.wait_connections(0) == 0  # every user's connection closed at the end


@pytest.mark.parametrize(
    ("fault", "check", "kind"),
    [
        ("down:drop=0.1", "loss", "lost"),
        ("down:duplicate=0.1", "duplicates", "duplicate_stamp"),
        ("down:reorder=0.3", "ordering", "fifo"),
    ],
)
def test_proxy_faults_fail_their_check_with_evidence(broker: RabbitMQ, tmp_path: Path, fault: str, check: str,
                                                     kind: str) -> None:
    run = stomp_run(broker, tmp_path / check, "--proxy-faults", fault, "--proxy-seed", "5")
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts[check]
    assert verdict["valid"] is False, verdict
    assert kind in run.anomaly_kinds(check), verdict
    first = verdict["anomalies"][0]
    assert first["message"] and first["evidence"], first


def test_a_wrong_passcode_is_one_preflight_line(broker: RabbitMQ, tmp_path: Path) -> None:
    run = stomp_run(broker, tmp_path / "wrong", passcode="not-the-password")
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "error" in line.lower()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("locust: error: ") and "access_refused" in lines[0], lines
    assert "Access refused for user" in lines[0] and "--stomp-passcode" in lines[0], lines
    assert "not-the-password" not in run.stdout + run.stderr


def test_a_path_no_plugin_serves_and_the_mqtt_port_are_one_line_each(broker: RabbitMQ, tmp_path: Path) -> None:
    """HTTP 404 on a path no plugin serves; web-mqtt offered `v12.stomp, v11.stomp` echoes the whole
    header back as its choice (a RabbitMQ surprise), which the client refuses: one line each."""
    lines = []
    for name, extra, host in [("no-plugin", ("--ws-path", "/nothing-here"), None),
                              ("mqtt-port", (), broker.mqtt_url.rsplit("/ws", 1)[0])]:
        run = stomp_run(broker, tmp_path / name, *extra, host=host)
        assert run.returncode == 2, run.describe()
        assert "Traceback" not in run.stdout + run.stderr, run.describe()
        found = [line for line in (run.stdout + run.stderr).splitlines() if "error" in line.lower()]
        assert len(found) == 1 and found[0].startswith("locust: error: "), found
        lines.append(found[0])
    assert "404" in lines[0] and "--ws-path" in lines[0], lines
    assert "bad_subprotocol" in lines[1] and "check --protocol and --host" in lines[1], lines
