"""Which loopback a process dials (the real master/worker run: tests/security/test_remote_worker.py)."""

from __future__ import annotations

import types

import pytest

from socketproof.target import loopback


def test_a_process_on_the_masters_loopback_may_run() -> None:
    parsed = types.SimpleNamespace()
    assert loopback.refusal(parsed, "ws://127.0.0.1:1") is None  # no stamp: the master made no loopback target
    loopback.stamp(parsed)
    assert loopback.refusal(parsed, "ws://127.0.0.1:1") is None


def test_a_process_on_another_loopback_refuses_naming_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = types.SimpleNamespace()
    loopback.stamp(parsed)
    monkeypatch.setattr(loopback, "identity", lambda: "another-machine")
    answer = loopback.refusal(parsed, "ws://127.0.0.1:4567")
    assert answer is not None and "ws://127.0.0.1:4567" in answer and "master's loopback" in answer


def test_the_identity_is_stable_within_a_process() -> None:
    assert loopback.identity() == loopback.identity() and loopback.identity()
