"""Network faults between client and server, made by the fault proxy on live connections:
half-open peers, dead servers, cuts during a Locust run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import ProtocolClient, Timeout
from client.transport import State
from tests.reliability.locustrun import start_locust
from tests.support.faultproxy import FaultProxy
from tests.support.server import ServerHandle, running_server

INTERVAL = 0.5
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT) as handle:
        yield handle


@pytest.fixture
def proxy(server: ServerHandle) -> Iterator[FaultProxy]:
    host, port = server.http_url.rsplit(":", 1)
    with FaultProxy((host.split("//")[1], int(port))) as fault_proxy:
        yield fault_proxy


def test_half_open_client_is_found_by_the_heartbeat_and_cleaned_up(server: ServerHandle, proxy: FaultProxy) -> None:
    server.wait_stats(timeout=10, connections=0)
    before = server.stats()["heartbeat_timeouts"]
    client = ProtocolClient(proxy.url, token=server.token("half-open"), timeout=10)
    client.connect()
    try:
        assert client.echo("through the proxy")["data"] == "through the proxy"
        server.wait_stats(timeout=10, connections=1, registry_entries=2)
        proxy.blackhole(True)  # the client's pongs (and everything else) vanish; no FIN anywhere
        started = time.monotonic()
        stats = server.wait_stats(timeout=INTERVAL + TIMEOUT + 10, connections=0, users=0, registry_entries=0)
        elapsed = time.monotonic() - started
        assert stats["heartbeat_timeouts"] == before + 1
        # interval + timeout, plus the housekeeping tick and a loaded machine's slack
        assert elapsed < INTERVAL + TIMEOUT + 3, elapsed
        assert client.state is State.OPEN  # the client saw nothing: it is half-open too
    finally:
        client.drop()


def test_client_request_timeout_notices_a_dead_server(server: ServerHandle, proxy: FaultProxy) -> None:
    client = ProtocolClient(proxy.url, token=server.token("dead-server"), timeout=10)
    client.connect()
    try:
        proxy.blackhole(True)
        with pytest.raises(Timeout):
            client.echo("lost", timeout=1.0)
        proxy.blackhole(False)
        # A fresh connection (what the Locust users do next) works again; resume is exact.
        client.drop()
        client.connect(last_seq=0)
        assert client.echo("back")["data"] == "back"
        assert client.welcome is not None and client.welcome["resumed"] is True
    finally:
        client.drop()


def _cut_periodically(proxy: FaultProxy, stop: threading.Event, every: float) -> None:
    rst = True
    while not stop.wait(every):
        proxy.cut(rst=rst)
        rst = not rst


def test_locust_run_through_periodic_cuts_has_no_loss_and_no_duplicates(tmp_path: Path) -> None:
    with running_server(heartbeat_interval=1, heartbeat_timeout=1) as server:
        host, port = server.http_url.rsplit(":", 1)
        with FaultProxy((host.split("//")[1], int(port))) as proxy:
            stop = threading.Event()
            cutter = threading.Thread(target=_cut_periodically, args=(proxy, stop, 2.0), daemon=True)
            run = start_locust(proxy.url, tmp_path, seconds=12)
            try:
                time.sleep(3)
                cutter.start()
                code, output = run.wait(timeout=120)
            finally:
                stop.set()
                run.stop()
            cutter.join(10)
            assert proxy.cuts >= 3, "the run saw no cuts"
    assert "Traceback" not in output, output[-5000:]
    verdicts = run.verdicts()
    for name in ("ordering", "duplicates", "loss"):
        assert verdicts[name]["valid"] is True, (name, verdicts[name])
    assert code == 0, output[-5000:]
    requests = run.requests()
    assert int(requests["connect"]["Request Count"]) > 12  # they reconnected
    assert int(requests["Aggregated"]["Request Count"]) > 100
    # Reconnections resumed from the last seq they saw: replayed or announced, never lost.
    assert verdicts["loss"]["stats"]["lost"] == 0


@pytest.mark.slow
def test_locust_users_notice_a_silent_server_and_reconnect(tmp_path: Path) -> None:
    """A black hole (no FIN, no data) for a while: idle users see no heartbeat ping for
    2 x interval + timeout, report `liveness`, drop and reconnect; the run goes on."""
    with running_server(heartbeat_interval=1, heartbeat_timeout=1) as server:
        host, port = server.http_url.rsplit(":", 1)
        with FaultProxy((host.split("//")[1], int(port))) as proxy:
            run = start_locust(proxy.url, tmp_path, seconds=14, users=10, extra=("--request-timeout", "2"))
            try:
                time.sleep(4)
                proxy.blackhole(True)
                time.sleep(5)
                proxy.blackhole(False)
                proxy.cut()  # what a real black hole leaves behind is dead too
                code, output = run.wait(timeout=120)
            finally:
                run.stop()
    assert "Traceback" not in output, output[-5000:]
    requests = run.requests()
    assert int(requests["liveness"]["Failure Count"]) > 0, sorted(requests)
    verdicts = run.verdicts()
    for name in ("ordering", "duplicates", "loss"):
        assert verdicts[name]["valid"] is True, (name, verdicts[name])
    # From the clients' side the server stopped pinging: the heartbeat check says so.
    assert verdicts["heartbeat"]["valid"] is False
    assert {a["kind"] for a in verdicts["heartbeat"]["anomalies"]} & {"ping_silence", "no_pings", "interval_max"}
    assert code == 1
