"""socketproof.run.users: WebSocketUser in a real Locust Environment (LocalRunner) against real servers.

Two wire protocols: the reference server (`socketproof` adapter: implicit per-user channels,
acks, server seqs) and the JSON chat server on the `websockets` library (the example
adapter: SUBSCRIBE rooms, no acks). Users are built by Locust's own classes and their
connections are real; the history they record is judged by the real checks.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator

import gevent
import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
from locust import task
from locust.env import Environment

from apps.json_chat_server import chat_server
from checks import run_checks
from client.adapter import Delivery, Stamp
from client.transport import State
from locustfiles.chat import ChatUser
from socketproof.run.context import RunContext
from socketproof.run.users import ConnectionFacts, WebSocketUser
from tests.socketproof.run.test_options import parse
from tests.socketproof.test_custom_adapter_runs import ADAPTER as JSON_CHAT
from tests.support.server import ServerHandle, running_server

JUDGED = ("ordering", "duplicates", "loss")


class Probe(WebSocketUser):
    """A user the test drives by hand (Locust never schedules its task)."""

    flow = "probe"

    @task
    def nothing(self) -> None:
        pass


def environment(host: str, *argv: str, user_classes: list[type] | None = None) -> Environment:
    env = Environment(user_classes=user_classes or [Probe], host=host, parsed_options=parse(*argv))
    env.create_local_runner()  # feeds the request events into env.stats
    return env


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        gevent.sleep(0.02)


def count(env: Environment, name: str) -> int:
    return env.stats.get(name, "WS").num_requests


def judged(env: Environment) -> dict[str, object]:
    """Close the books like RunChecker does and run the stamp checks over the history."""
    recorder = RunContext.of(env).state().recorder
    recorder.finish(complete=True)
    history = recorder.history()
    return {verdict.name: verdict.valid for verdict in run_checks(history, JUDGED)}


def chat_connections(url: str) -> int:
    with urllib.request.urlopen(url.replace("ws://", "http://") + "/metrics", timeout=5) as answer:
        line = next(x for x in answer.read().decode().splitlines() if x.startswith("chat_connections "))
    return int(float(line.split()[1]))


@contextlib.contextmanager
def reference() -> Iterator[ServerHandle]:
    """The reference server; on the way out, every connection the test opened is gone."""
    with running_server() as server:
        yield server
        server.wait_stats(connections=0)


# -- the socketproof adapter (reference server) -------------------------------------


def test_publish_records_stamps_that_peers_receive_and_the_checks_judge() -> None:
    with reference() as server:
        env = environment(server.ws_url, "--jwt-secret", server.secret, "--identities", "2")
        alice, bob = Probe(env), Probe(env)
        assert (alice.identity, bob.identity) == ("probe-p0-0", "probe-p0-1")
        to_bob = alice.connection()
        mine = bob.connection()
        assert bob.connection() is mine, "an open connection is reused"
        first = alice.publish(to_bob, bob.identity)
        second = alice.publish(to_bob, bob.identity)
        own = bob.publish(mine, bob.my_channel())
        assert (first.sender, first.channel, first.counter, second.counter) == (
            Stamp.safe(to_bob.label), bob.identity, 1, 2)
        assert first.sender.endswith(alice.shared.process_tag) and own.counter == 1 and own.channel == bob.identity
        wait_for(lambda: count(env, "deliver") >= 3, what="3 deliveries to bob")
        assert count(env, "publish") == 3 and env.stats.total.num_failures == 0
        assert env.stats.get("deliver", "WS").max_response_time < 5000
        published = RunContext.of(env).state().recorder.history().published
        assert published[first.sender][bob.identity].counters.ranges() == [[1, 2]]
        alice.on_stop()
        bob.on_stop()
        assert alice.clients == [] and alice.client is None
        assert judged(env) == {name: True for name in JUDGED}


def test_deliver_is_reported_for_this_process_stamps_only() -> None:
    env = environment("ws://127.0.0.1:9")  # no connection is opened
    user = Probe(env)
    label = RunContext.of(env).state().label(user.identity)
    sent = time.time() - 0.05
    delivered = ConnectionFacts(user)  # what a connection's client calls with each delivery
    delivered(Delivery(user.identity, Stamp("probe-w3-0#1@w3", "x", 1, sent), seq=4))
    assert count(env, "deliver") == 0, "another process's stamp: another clock"
    assert delivered.last_seq == 4, "the server's seq is still remembered"
    delivered(Delivery(user.identity, Stamp(Stamp.safe(label), "x", 1, sent), replay=True))
    delivered(Delivery(user.identity, None, seq=2))
    assert count(env, "deliver") == 0, "a replay and an unstamped message are no new delivery"
    assert delivered.last_seq == 4, "an older seq does not move it back"
    delivered(Delivery(user.identity, Stamp(Stamp.safe(label), "x", 2, sent)))
    entry = env.stats.get("deliver", "WS")
    assert entry.num_requests == 1 and 40 <= entry.max_response_time < 5000


def test_a_dead_connection_is_reopened_resuming_after_its_last_seq() -> None:
    with reference() as server:
        env = environment(server.ws_url, "--jwt-secret", server.secret)
        user = Probe(env)
        old = user.connection()
        user.publish(old, user.my_channel())
        wait_for(lambda: (user.last_seq(old) or 0) > 0, what="a delivery with a seq")
        seq = user.last_seq(old)
        old.drop()
        wait_for(lambda: old.state is State.CLOSED, what="the drop")
        new = user.connection()
        assert new is not old and new.label != old.label and new.state is State.OPEN
        assert new.context.resume_after == seq, "the RESUME adapter resumes after the old connection's seq"
        assert old.label not in user.facts and user.clients == [new], "the old connection is forgotten"
        assert RunContext.of(env).state().live.pick(user.rng, "nobody") == user.identity
        user.on_stop()
        assert RunContext.of(env).state().live.pick(user.rng, "nobody") == "nobody"


def test_tabs_are_topped_up_and_dead_ones_replaced() -> None:
    with reference() as server:
        env = environment(server.ws_url, "--jwt-secret", server.secret)
        user = Probe(env)
        tabs = list(user.tabs(3))
        assert len(tabs) == 3 and all(tab.state is State.OPEN for tab in tabs)
        assert len({tab.label for tab in tabs}) == 3
        server.wait_stats(connections=3)
        tabs[1].drop()
        wait_for(lambda: tabs[1].state is State.CLOSED, what="the drop")
        again = user.tabs(3)
        assert len(again) == 3 and tabs[1] not in again and tabs[0] in again and tabs[2] in again
        assert user.tabs(2) == again, "never fewer than open: only topped up"
        user.on_stop()
        assert user.clients == []


# -- a SUBSCRIBE adapter (the JSON chat server) -------------------------------------


def test_a_subscribe_adapter_joins_the_room_and_publishes_to_it() -> None:
    with chat_server() as url:
        env = environment(url, "--protocol", JSON_CHAT, "--rooms", "1")
        alice, bob = Probe(env), Probe(env)
        alice.connection()
        bob.connection()
        assert count(env, "subscribe") == 2 and count(env, "connect") == 2
        history = RunContext.of(env).state().recorder.history()
        assert all(c.received["room-0"].subscribed_at is not None for c in history.connections)
        assert alice.my_channel() == alice.room() == "room-0" == alice.peer_channel()
        stamp = alice.publish(alice.connection(), alice.my_channel())
        assert stamp.channel == "room-0"
        wait_for(lambda: count(env, "deliver") >= 2, what="the broadcast to both members")
        assert env.stats.total.num_failures == 0
        alice.on_stop()
        bob.on_stop()
        assert judged(env) == {name: True for name in JUDGED}
        wait_for(lambda: chat_connections(url) == 0, what="the server to count its connections closed")


def test_rooms_spread_identities_by_rooms() -> None:
    env = environment("ws://127.0.0.1:9", "--protocol", JSON_CHAT, "--rooms", "4", "--identities", "8")
    users = [Probe(env) for _ in range(8)]
    rooms = {user.room() for user in users}
    assert rooms <= {f"room-{n}" for n in range(4)} and len(rooms) > 1
    assert all(user.my_channel() == user.room() for user in users)
    plain = Probe(environment("ws://127.0.0.1:9"))
    assert plain.my_channel() == plain.identity, "without SUBSCRIBE a user's channel is its own user"


# -- Locust runs the flow -----------------------------------------------------------


def run_chat(host: str, *argv: str, seconds: float = 2.0) -> Environment:
    """ChatUser under a real LocalRunner: start, run, drain like RunChecker, stop."""
    env = environment(host, "--send-interval", "0.05", *argv, user_classes=[ChatUser])
    runner = env.runner
    runner.start(4, spawn_rate=100)
    gevent.sleep(seconds)
    assert runner.user_count == 4
    RunContext.of(env).state().stopping = True  # what RunChecker.on_test_stopping does: send nothing new
    gevent.sleep(0.5)
    runner.stop()
    assert runner.user_count == 0
    runner.quit()
    return env


def test_the_chat_flow_under_a_local_runner_on_the_json_chat_server() -> None:
    with chat_server() as url:
        env = run_chat(url, "--protocol", JSON_CHAT, "--rooms", "2")
        assert count(env, "echo") > 10 and count(env, "publish") > 10 and count(env, "deliver") > 10
        assert env.stats.total.num_failures == 0, env.stats.errors
        assert judged(env) == {name: True for name in JUDGED}
        wait_for(lambda: chat_connections(url) == 0, what="every connection closed by on_stop")


def test_the_chat_flow_under_a_local_runner_on_the_reference_server() -> None:
    with reference() as server:
        env = run_chat(server.ws_url, "--jwt-secret", server.secret)
        assert count(env, "echo") > 10 and count(env, "publish") > 10 and count(env, "deliver") > 10
        assert env.stats.total.num_failures == 0, env.stats.errors
        assert judged(env) == {name: True for name in JUDGED}
