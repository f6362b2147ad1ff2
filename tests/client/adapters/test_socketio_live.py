"""The Socket.IO adapter session against a real python-socketio server (apps/socketio_app.py),
its frames moved by websocket-client: no Locust, no Socketproof client, nothing mocked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import websocket

from apps.socketio_app import AppHandle, running_app
from client.adapter import Delivery, Failed, KeepAlive, Ready, Reply, Send, SessionContext, Stamp, stamped_payload
from client.adapters import AdapterSettings, build_adapter
from client.adapters.socketio import SocketIOSession
from tests.support.server import running_server

DEADLINE = 10.0


class Driver:
    """One connection: websocket-client moves frames, the adapter session reads them."""

    def __init__(self, url: str, token: str | None, **options: str) -> None:
        adapter = build_adapter("socketio", AdapterSettings(values=options))
        self.session: SocketIOSession = adapter.session(SessionContext("u", "u#1", token=token))
        handshake = self.session.handshake()
        query = "&".join(f"{key}={value}" for key, value in handshake.query.items())
        self.ws = websocket.create_connection(url.replace("http://", "ws://") + handshake.path + "?" + query,
                                              timeout=DEADLINE)
        self.events: list[Any] = []

    def send(self, frame: str) -> None:
        self.ws.send(frame)

    def until(self, wanted: type | tuple[type, ...], count: int = 1) -> list[Any]:
        """Read frames (answering Sends) until `count` events of `wanted` arrived; those events."""
        deadline = time.monotonic() + DEADLINE
        found: list[Any] = []
        while len(found) < count:
            assert time.monotonic() < deadline, f"no {wanted} within {DEADLINE}s; saw {self.events[-5:]}"
            for event in self.session.receive(self.ws.recv()):
                self.events.append(event)
                if isinstance(event, Send):
                    self.ws.send(event.frame)
                if isinstance(event, wanted):
                    found.append(event)
        return found

    def close(self) -> None:
        for frame in self.session.goodbye():
            self.ws.send(frame)
        self.ws.close()


@pytest.fixture(scope="module")
def app() -> Iterator[AppHandle]:
    with running_app(ping_interval=1, ping_timeout=1) as handle:
        yield handle


def token_for(app: AppHandle, user: str = "alice", secret: str | None = None) -> str:
    return jwt.encode({"sub": user, "exp": time.time() + 60}, secret or app.secret, algorithm="HS256")


def connected(app: AppHandle, **options: str) -> Driver:
    driver = Driver(app.url, token_for(app), **options)
    [ready] = driver.until((Ready, Failed))
    assert isinstance(ready, Ready), ready
    return driver


def publish_all(driver: Driver, room: str, count: int) -> None:
    corr, frame = driver.session.subscribe(room)
    driver.send(frame)
    assert [reply.corr for reply in driver.until(Reply)] == [corr]
    for counter in range(1, count + 1):
        stamp = Stamp("u#1", room, counter, time.time())
        corr, frame = driver.session.publish(room, stamp, stamped_payload(stamp, 64))
        driver.send(frame)
        [reply] = driver.until(Reply)
        assert reply.corr == corr and reply.error is None


def delivered(driver: Driver, expected: int) -> list[int]:
    """Counters of the deliveries so far, once at least `expected` arrived."""
    deliveries = [event for event in driver.events if isinstance(event, Delivery)]
    if len(deliveries) < expected:
        deliveries += driver.until(Delivery, expected - len(deliveries))
    return [delivery.stamp.counter for delivery in deliveries]


def test_clean_session_round_trips_deliveries_and_heartbeat(app: AppHandle) -> None:
    driver = connected(app)
    ready = next(event for event in driver.events if isinstance(event, Ready))
    assert ready.heartbeat == (1.0, 1.0)
    app.wait_connected(1)

    corr, frame = driver.session.request("echo", "hello")
    driver.send(frame)
    assert driver.until(Reply) == [Reply(corr, "hello")]

    publish_all(driver, "lobby", 5)
    deliveries = [event for event in driver.events if isinstance(event, Delivery)]
    seen = [(d.channel, d.stamp.sender, d.stamp.counter) for d in deliveries]
    assert seen == [("lobby", "u#1", n) for n in range(1, 6)]

    driver.until(KeepAlive, 2)  # two pings answered: longer than the server's ping timeout
    assert app.metrics()["socketio_connected"] == 1
    driver.close()
    app.wait_connected(0)


def test_wrong_secret_is_a_connect_error_with_the_servers_text(app: AppHandle) -> None:
    driver = Driver(app.url, token_for(app, secret="not-the-secret-but-32-bytes-long!!"))
    [failed] = driver.until((Ready, Failed))
    assert isinstance(failed, Failed)
    assert str(failed.error) == "connect_error: Socket.IO CONNECT_ERROR on namespace /: " \
                                "invalid token: Signature verification failed"
    driver.ws.close()
    app.wait_connected(0)


def test_a_server_that_is_not_socketio_fails_the_start_up() -> None:
    with running_server() as server:
        ws = websocket.create_connection(server.ws_url + "?token=" + server.token("u"), timeout=DEADLINE)
        try:
            session = build_adapter("socketio", AdapterSettings()).session(SessionContext("u", "u#1", token="t"))
            [failed] = session.receive(ws.recv())
        finally:
            ws.close()
    assert isinstance(failed, Failed) and failed.error.code == "unexpected_frame"
    assert "not an Engine.IO packet" in str(failed.error)


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ({"drop_every": 2}, [1, 3, 5]),
        ({"duplicate_every": 2}, [1, 2, 2, 3, 4, 4, 5, 6, 6]),
        ({"reorder_every": 2}, [1, 3, 2, 5, 4]),  # 6 waits for a successor that never comes
    ],
)
def test_fault_switches_break_room_broadcasts(switch: dict[str, int], expected: list[int]) -> None:
    with running_app(**switch) as faulty:
        driver = connected(faulty)
        publish_all(driver, "lobby", 6)
        assert delivered(driver, len(expected)) == expected
        driver.close()
        faulty.wait_connected(0)
