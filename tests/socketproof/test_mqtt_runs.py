"""`locust --protocol mqtt` (MQTT 3.1.1, QoS 1) against a real RabbitMQ with web-mqtt
(tests/support/rabbitmq.py, the session's private broker; skips when rabbitmq-server is not
installed): a clean run passes ordering, duplicates, loss and heartbeat (the broker's PINGRESPs to the
client's PINGREQ every --mqtt-keepalive); the fault proxy's drop, duplicate, reorder and drop_keepalives
each fail their check with evidence; a wrong password (RabbitMQ: close 1002, no CONNACK) ends the run at
the pre-flight; a persistent session is the offline flow's resume.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.adapter import SessionContext, Stamp
from client.adapters import AdapterSettings, build_adapter
from client.adapters import mqtt_packets as mqtt
from client.hooks import NoHooks
from tests.client.adapters.test_rabbitmq_live import Mqtt
from tests.socketproof.support import LocustRun, run_locust
from tests.support.rabbitmq import RabbitMQ


def base_url(broker: RabbitMQ) -> str:
    return broker.mqtt_url.rsplit("/ws", 1)[0]


def mqtt_run(broker: RabbitMQ, report_dir: Path, *extra: str, passcode: str | None = None, users: int = 10,
             user_classes: tuple[str, ...] = ()) -> LocustRun:
    args = [
        "-f", "locustfiles", "-t", "10s", "-u", str(users), "-r", str(users), "--stop-timeout", "5",
        "--protocol", "mqtt", "--host", base_url(broker), "--ws-path", "/ws",
        "--mqtt-username", broker.user,
        "--server-connections", broker.connections_source, *extra, *user_classes,
    ]
    env = {"SOCKETPROOF_MQTT_PASSWORD": broker.password if passcode is None else passcode}
    run = run_locust(args, report_dir, env=env)
    assert not run.leftovers, run.describe()
    return run


def test_clean_run_passes(broker: RabbitMQ, tmp_path: Path) -> None:
    run = mqtt_run(broker, tmp_path / "clean", "--mqtt-keepalive", "2")
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    for check in ("ordering", "duplicates", "loss", "heartbeat", "cleanup"):
        assert run.verdicts[check]["valid"] is True, (check, run.verdicts[check], run.describe())
    heartbeat = run.verdicts["heartbeat"]["stats"]
    assert heartbeat["connections_checked"] > 0 and heartbeat["pings"] > 0, heartbeat
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
    # A reorder is visible only where two messages of one sender are neighbours in a subscriber's
    # stream: two chat users on one topic at QoS 0 (no PUBACK between a sender's messages), so
    # about every other swap is one sender's pair (with six senders at QoS 1 it was 1 in 200).
    run = mqtt_run(broker, tmp_path / check, "--proxy-faults", fault, "--proxy-seed", "5", "--rooms", "1",
                   "--send-interval", "0.1", "--mqtt-qos", "0", users=2, user_classes=("ChatUser",))
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts[check]
    assert verdict["valid"] is False, verdict
    assert kind in run.anomaly_kinds(check), verdict
    first = verdict["anomalies"][0]
    assert first["message"] and first["evidence"], first


def test_unanswered_pingreqs_fail_heartbeat_with_evidence(broker: RabbitMQ, tmp_path: Path) -> None:
    """The proxy swallows the broker's PINGRESPs (its PINGREQs still arrive, so it closes nobody):
    connections that lived past two keep-alive periods got no heartbeat at all."""
    run = mqtt_run(broker, tmp_path / "pings", "--mqtt-keepalive", "2", "--proxy-faults", "down:drop_keepalives",
                   user_classes=("IdleUser",))
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts["heartbeat"]
    assert verdict["valid"] is False, verdict
    assert "no_pings" in run.anomaly_kinds("heartbeat"), verdict
    first = verdict["anomalies"][0]
    assert first["evidence"]["interval"] == 2.0 and first["evidence"]["interval_source"] == "advertised", first


def test_a_wrong_password_is_one_preflight_line(broker: RabbitMQ, tmp_path: Path) -> None:
    run = mqtt_run(broker, tmp_path / "wrong", passcode="not-the-password")
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "error" in line.lower()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("locust: error: ") and "access_refused" in lines[0], lines
    assert "close 1002" in lines[0] and "--mqtt-password" in lines[0], lines
    assert "not-the-password" not in run.stdout + run.stderr


def test_persistent_sessions_pass_and_count_redeliveries_apart(broker: RabbitMQ, tmp_path: Path) -> None:
    """--mqtt-clean-start false with the label less its connection number as client id: a user's reconnect takes its
    session back, RabbitMQ redelivers what was not PUBACKed (DUP) and queues what came meanwhile.
    A redelivery is counted apart (`mqtt_redelivery` frames), never a duplicates FAIL."""
    run = mqtt_run(broker, tmp_path / "persistent", "--mqtt-clean-start", "false", "--mqtt-client-id", "{session}")
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.verdicts[check], run.describe())
    assert run.returncode == 0, run.describe()


PERSISTENT = ("--mqtt-clean-start", "false", "--mqtt-client-id", "{session}", "--mqtt-keepalive", "2")


def test_offline_flow_resumes_a_persistent_session(broker: RabbitMQ, tmp_path: Path) -> None:
    """With a persistent session the adapter declares `resume` and the offline flow runs: the user goes
    away, a peer publishes to its room meanwhile (QoS 1, queued by the broker for the session), and
    the reconnect (CONNACK session-present) gets them: loss PASS, redeliveries apart (no duplicates FAIL)."""
    run = mqtt_run(broker, tmp_path / "offline", *PERSISTENT, users=4, user_classes=("OfflineUser", "ChatUser"))
    assert "Traceback" not in run.stdout + run.stderr, run.describe()
    assert "OfflineUser left out" not in run.stdout + run.stderr, run.describe()
    for check in ("ordering", "duplicates", "loss"):
        assert run.verdicts[check]["valid"] is True, (check, run.verdicts[check], run.describe())
    assert run.stats["resume"]["num_requests"] > 0 and run.stats["resume"]["num_failures"] == 0, run.stats
    assert run.verdicts["loss"]["stats"]["stamp_pairs_checked"] > 0
    assert run.returncode == 0, run.describe()


def test_offline_flow_fails_loss_when_the_queued_messages_do_not_arrive(broker: RabbitMQ, tmp_path: Path) -> None:
    """The same offline flow with the proxy dropping a tenth of what the broker sends: what it kept for
    the session does not all reach the resumed connections, and loss FAILs naming one. (A dropped
    SUBACK or PUBACK is a timeout: short ones, so the run goes on.)"""
    run = mqtt_run(broker, tmp_path / "offline-drop", *PERSISTENT, "--proxy-faults", "down:drop=0.1",
                   "--proxy-seed", "3", "--request-timeout", "1", "-t", "15s", users=2,
                   user_classes=("OfflineUser",))
    assert run.returncode == 1, run.describe()
    verdict = run.verdicts["loss"]
    assert verdict["valid"] is False and "lost" in run.anomaly_kinds("loss"), verdict
    first = verdict["anomalies"][0]["evidence"]
    assert first["sender"].startswith("offline-peer") and first["label"] != first["sender"], first


class Seen(NoHooks):
    def __init__(self) -> None:
        self.frames: list[tuple[str, str]] = []
        self.stamps: list[Stamp] = []
        self.arrived = threading.Event()

    def frame(self, direction: str, kind: str) -> None:
        self.frames.append((direction, kind))

    def delivered(self, channel: str, stamp: Stamp | None, seq: int | None, message_id: Any, t: float) -> None:
        if stamp is not None:
            self.stamps.append(stamp)
            self.arrived.set()


def test_a_dup_redelivery_on_reconnect_is_a_delivery_counted_apart(broker: RabbitMQ) -> None:
    """RabbitMQ redelivers a QoS 1 message never PUBACKed with DUP set when the persistent session
    comes back: the session PUBACKs it, delivers it (this connection never got it) and counts it
    apart as an `mqtt_redelivery` frame."""
    stamp = Stamp("sp-pub", "durable", 1, 1.0).encode().encode()
    raw, publisher = Mqtt(broker), Mqtt(broker)
    try:
        assert raw.connect(broker, "sp-dup-test", clean=False).accepted
        raw.send(mqtt.Subscribe(1, (mqtt.Subscription("socketproof/durable", 1),)))
        raw.until(mqtt.Suback)
        assert publisher.connect(broker, "sp-dup-pub").accepted
        publisher.send(mqtt.Publish("socketproof/durable", stamp, qos=1, packet_id=1))
        publisher.until(mqtt.Puback)
        [first] = raw.until(mqtt.Publish)
        assert not first.dup
        raw.close()  # no PUBACK: the broker owes it again
        assert broker.wait_connections(1) == 1
        adapter = build_adapter("mqtt", AdapterSettings(values={
            "mqtt_username": broker.user, "mqtt_password": broker.password, "mqtt_clean_start": "false",
            "mqtt_client_id": "{identity}"}))
        seen = Seen()
        client = Client(broker.mqtt_url, adapter, SessionContext("sp-dup-test", "sp-dup-test#1"), hooks=seen)
        ready = client.connect()
        assert ready.info["session_present"] is True
        assert seen.arrived.wait(10), seen.frames
        assert [s.encode().encode() for s in seen.stamps] == [stamp]
        assert ("in", "mqtt_redelivery") in seen.frames
        client.close()
        cleaner = Mqtt(broker)  # a clean session ends the durable one (and its queue)
        cleaner.connect(broker, "sp-dup-test", clean=True)
        cleaner.send(mqtt.Disconnect())
        cleaner.close()
    finally:
        raw.close()
        publisher.close()
