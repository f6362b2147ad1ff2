"""`locust --protocol stomp` against a real RabbitMQ with web-stomp (tests/support/rabbitmq.py, the
session's private broker; skips when rabbitmq-server is not installed): a clean run passes
ordering, duplicates, loss and heartbeat (the server's heart-beat period judged as a maximum
silence: client/adapters/stomp.py says why); the fault proxy's drop, duplicate, reorder and
drop_keepalives each fail their check with evidence; a wrong passcode ends the run at the
pre-flight (exit 2, one line).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.socketproof.support import LocustRun, run_locust
from tests.support.rabbitmq import RabbitMQ


def base_url(broker: RabbitMQ) -> str:
    return broker.stomp_url.rsplit("/ws", 1)[0]


def stomp_run(broker: RabbitMQ, report_dir: Path, *extra: str, passcode: str | None = None,
              host: str | None = None) -> LocustRun:
    args = [
        "-f", "locustfiles", "-t", "10s", "-u", "10", "-r", "10", "--stop-timeout", "5",
        "--protocol", "stomp", "--host", host or base_url(broker), "--ws-path", "/ws",
        "--stomp-login", broker.user,
        "--server-connections", broker.connections_source, *extra,
    ]
    env = {"SOCKETPROOF_STOMP_PASSCODE": broker.password if passcode is None else passcode}
    run = run_locust(args, report_dir, env=env)
    assert not run.leftovers, run.describe()
    return run


def test_clean_run_passes(broker: RabbitMQ, tmp_path: Path) -> None:
    run = stomp_run(broker, tmp_path / "clean", "--stomp-heart-beat", "1000")
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    for check in ("ordering", "duplicates", "loss", "heartbeat", "cleanup"):
        assert run.verdicts[check]["valid"] is True, (check, run.verdicts[check], run.describe())
    assert run.verdicts["heartbeat"]["stats"]["connections_checked"] > 0, run.verdicts["heartbeat"]
    assert run.stats["publish"]["num_requests"] > 0 and run.stats["publish"]["num_failures"] == 0, run.stats
    assert run.stats["deliver"]["num_requests"] > 0
    assert run.returncode == 0, run.describe()
    assert broker.wait_connections(0) == 0  # every user's connection closed at the end
    count = run.verdicts["cleanup"]["stats"]["connection_count"]  # the broker's own (rabbitmq_prometheus)
    assert count["source"] == broker.connections_source and count["after"] <= count["before"], count


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


def test_dropped_server_heart_beats_fail_heartbeat_with_evidence(broker: RabbitMQ, tmp_path: Path) -> None:
    """Idle users only (nothing but heart-beats comes in), the broker's heart-beats swallowed by the
    proxy: the longest silence outgrows three periods. The client's own heart-beats still reach
    the broker, so it closes nobody."""
    run = stomp_run(broker, tmp_path / "beats", "--stomp-heart-beat", "1000", "--proxy-faults",
                    "down:drop_keepalives", "IdleUser")
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts["heartbeat"]
    assert verdict["valid"] is False, verdict
    assert run.anomaly_kinds("heartbeat") & {"interval_max", "ping_silence"}, verdict
    first = verdict["anomalies"][0]
    assert first["evidence"]["interval_source"] == "advertised max silence" and first["evidence"]["interval"] == 1.0


def test_connections_left_open_at_the_broker_fail_cleanup_with_evidence(broker: RabbitMQ, tmp_path: Path) -> None:
    """The proxy goes half-open 1 s into each connection: the users' closes never reach the broker,
    which still holds their connections when the run reads its count after the run (the proxy lets
    go only at quit, then the broker drops them: the `broker` fixture sees none left). Two idle
    users for 4 s: nothing else to judge, so the run is short (~14 s, 5 of them the cleanup wait)."""
    run = stomp_run(broker, tmp_path / "leak", "--stomp-heart-beat", "0", "--proxy-faults", "half_open=1s",
                    "-t", "4s", "-u", "2", "-r", "2", "IdleUser")
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts["cleanup"]
    assert verdict["valid"] is False and "leak" in run.anomaly_kinds("cleanup"), verdict
    evidence = next(a for a in verdict["anomalies"] if a["kind"] == "leak")["evidence"]
    assert evidence["source"] == broker.connections_source and evidence["leaked"] >= 1, evidence
    assert evidence["after"] == evidence["before"] + evidence["leaked"], evidence


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
