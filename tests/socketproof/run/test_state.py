"""socketproof.run.state: the one owner of a process's run state (identities, labels, live peers, adapter).

Ported from test_run_state.py (its DeliveryTracker tests went with the DeliveryTracker:
`deliver` is now timed from the stamp, see test_users.py).
"""

from __future__ import annotations

import logging
import random

import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
import pytest
from locust.env import Environment

from client.adapter import SUBSCRIBE
from socketproof.run.arguments import build_run_adapter
from socketproof.run.context import RunContext
from socketproof.run.options import LoadOptions
from socketproof.run.state import LiveIdentities, RunState, process_id
from tests.socketproof.run.test_options import parse

JSON_CHAT = "docs/examples/json_chat_adapter.py:JsonChatAdapter"


def state(process: str = "w1", **options: object) -> RunState:
    load = LoadOptions(**options)  # type: ignore[arg-type]
    return RunState(load, process, build_run_adapter(None, load))


def local_environment(*argv: str) -> Environment:
    environment = Environment(parsed_options=parse(*argv))
    environment.create_local_runner()
    return environment


# -- identities and labels ----------------------------------------------------------


def test_identities_wrap_at_the_pool_size_per_flow() -> None:
    run = state(identities=3)
    assert [run.identity("chat") for _ in range(4)] == ["chat-w1-0", "chat-w1-1", "chat-w1-2", "chat-w1-0"]
    assert run.identity("idle") == "idle-w1-0", "each flow has its own pool"
    assert state(identities=1).identity("chat") == "chat-w1-0"


def test_labels_are_unique_and_end_with_the_process_tag() -> None:
    run = state("w7")
    labels = [run.label("chat-w7-0") for _ in range(50)]
    assert len(set(labels)) == 50
    assert labels[0] == f"chat-w7-0#1{run.process_tag}" and run.process_tag.startswith("@w7.")
    assert all(label.endswith(run.process_tag) for label in labels)
    assert state("w7").process_tag != run.process_tag, "a new run: a new tag (an older run's replays never match)"
    assert run.recorder is not None and run.stopping is False


def test_a_stamp_is_local_only_when_its_sender_ends_with_this_process_tag() -> None:
    run = state("w1")
    assert run.is_local(run.label("chat-w1-0"))
    assert not run.is_local(state("w2").label("chat-w2-0")), "another worker's stamp: another clock"
    assert not run.is_local("chat-w1-0#1@w11"), "w11 is not w1"
    assert not run.is_local("chat-w1-0#1")


def test_the_recorder_carries_the_adapter_and_its_capabilities() -> None:
    run = state(protocol=JSON_CHAT)
    assert run.adapter.name == "json-chat"
    history = run.recorder.history()
    assert history.adapter == "json-chat" and SUBSCRIBE in (history.capabilities or ())


# -- one per environment, owned by the RunContext -----------------------------------


def test_the_context_builds_the_state_from_the_parsed_options_once() -> None:
    environment = local_environment("--protocol", JSON_CHAT, "--rooms", "3", "--identities", "2")
    context = RunContext.of(environment)
    assert context.current_state() is None and RunContext.of(environment) is context
    run = context.state()
    assert context.state() is run and context.current_state() is run
    assert (run.adapter.name, run.options.rooms, run.process_id) == ("json-chat", 3, "p0")
    assert [run.identity("chat") for _ in range(3)] == ["chat-p0-0", "chat-p0-1", "chat-p0-0"]


def test_a_new_run_starts_a_fresh_state() -> None:
    context = RunContext.of(local_environment())
    first = context.state()
    first.identity("chat")
    context.new_run()
    context.new_run()  # twice is harmless
    assert context.current_state() is None
    second = context.state()
    assert second is not first and second.identity("chat") == "chat-p0-0"


def test_bad_options_fall_back_to_defaults_with_one_error_line(caplog: pytest.LogCaptureFixture) -> None:
    """The plugin stops a run with bad options at init; a user made anyway must not crash."""
    environment = local_environment()
    environment.parsed_options.protocol = "nope"
    with caplog.at_level(logging.ERROR, logger="socketproof"):
        run = RunContext.of(environment).state()
    assert run.adapter.name == "socketproof" and run.options == LoadOptions()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("--protocol 'nope'") and errors[0].endswith("using defaults")


def test_process_id_of_a_local_runner() -> None:
    assert process_id(local_environment()) == "p0"


# -- live identities ----------------------------------------------------------------


def test_live_identities_count_connections_per_identity() -> None:
    live = LiveIdentities()
    rng = random.Random(1)
    assert live.pick(rng, "me") == "me"
    live.add("alice")
    live.add("alice")
    live.remove("alice")
    assert live.pick(rng, "me") == "alice", "one of alice's two connections is still open"
    live.remove("alice")
    assert live.pick(rng, "me") == "me"


def test_live_identities_ignore_a_remove_without_add() -> None:
    live = LiveIdentities()
    rng = random.Random(2)
    live.remove("ghost")
    live.add("bob")
    live.remove("ghost")
    live.remove("bob")
    live.remove("bob")  # one remove too many must not go negative
    live.add("bob")
    assert live.pick(rng, "me") == "bob"
    live.remove("bob")
    assert live.pick(rng, "me") == "me"


def test_live_identities_pick_only_live_ones() -> None:
    live = LiveIdentities()
    for name in ("a", "b", "c"):
        live.add(name)
    live.remove("b")
    rng = random.Random(3)
    assert {live.pick(rng, "me") for _ in range(200)} == {"a", "c"}
