"""Core test 10: the per-user state document: snapshot, patches in version order, resync, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from client import ProtocolError
from tests.support.server import ServerHandle
from tests.unified.websocket.metrics import TestMetrics
from tests.unified.websocket.support import CLIENT_TIMEOUT, Baseline, Clients, apply_patch, collect, new_user, quiet

UPDATES = 30


def patches_for(n: int) -> list[dict[str, Any]]:
    """A mix of adds, overwrites, nested values and deletes (null)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        patch: dict[str, Any] = {f"k{i % 7}": i, "last": {"i": i, "tags": ["a", i]}}
        if i % 5 == 4:
            patch[f"k{(i + 3) % 7}"] = None
        out.append(patch)
    return out


def test_snapshot_on_connect(server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics) -> None:
    user = new_user()
    first = clients.open(user)
    assert first.session is not None
    assert first.session.snapshot == {"type": "snapshot", "version": 0, "state": {}}
    ack = metrics.timed(first.update, 0, {"color": "red", "n": 1})
    assert (ack["type"], ack["version"]) == ("ack", 1)
    second = clients.open(user)
    assert second.session is not None
    snap = second.session.snapshot
    assert (snap["version"], snap["state"]) == (1, {"color": "red", "n": 1})
    first.close(), second.close()
    baseline.assert_restored()


def test_patches_reach_other_tabs_in_version_order(
    server: ServerHandle, clients: Clients, baseline: Baseline, metrics: TestMetrics
) -> None:
    user = new_user()
    writer, *readers = [clients.open(user) for _ in range(3)]
    state: dict[str, Any] = {}
    version = 0
    patches = patches_for(UPDATES)
    with metrics.measure(UPDATES):
        for patch in patches:
            ack = metrics.timed(writer.update, version, patch)
            assert ack["version"] == version + 1
            version = ack["version"]
            state = apply_patch(state, patch)
    for i, reader in enumerate(readers):
        got = collect(reader, UPDATES, kind="patch")
        assert [p["version"] for p in got] == list(range(1, UPDATES + 1)), f"reader {i}"
        assert [p["patch"] for p in got] == patches
        mirrored: dict[str, Any] = {}
        for p in got:
            mirrored = apply_patch(mirrored, p["patch"])
        assert mirrored == state
        snap = reader.sync()
        assert (snap["type"], snap["version"], snap["state"]) == ("snapshot", version, state)
    assert quiet(writer, 0.05) == []  # the writer gets acks, not its own patches
    for c in (writer, *readers):
        c.close()
    baseline.assert_restored()


def test_full_resync_after_reconnect(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user()
    writer, reader = clients.open(user), clients.open(user)
    state: dict[str, Any] = {}
    version = 0
    for patch in patches_for(5):
        version = writer.update(version, patch)["version"]
        state = apply_patch(state, patch)
    reader.drop()
    for patch in patches_for(12)[5:]:  # missed while away
        version = writer.update(version, patch)["version"]
        state = apply_patch(state, patch)
    back = clients.open(user)
    assert back.session is not None
    snap = back.session.snapshot
    assert (snap["version"], snap["state"]) == (version, state), "the reconnect snapshot must be the current state"
    synced = back.sync()
    assert (synced["version"], synced["state"]) == (version, state)
    last = writer.update(version, {"after": True})  # and it follows live again
    (patch,) = collect(back, 1, kind="patch")
    assert (patch["version"], patch["patch"]) == (last["version"], {"after": True})
    writer.close(), back.close()
    baseline.assert_restored()


@pytest.mark.parametrize("base_offset", [-1, 1, 5])
def test_stale_base_version_is_a_conflict_and_changes_nothing(
    server: ServerHandle, clients: Clients, baseline: Baseline, base_offset: int
) -> None:
    user = new_user()
    writer, reader = clients.open(user), clients.open(user)
    for v in range(3):
        writer.update(v, {"v": v})
    collect(reader, 3, kind="patch")
    before = writer.sync()
    with pytest.raises(ProtocolError) as caught:
        writer.update(3 + base_offset, {"v": "lost", "extra": 1})
    error = caught.value.frame
    assert (error["code"], error["current_version"]) == ("version_conflict", 3)
    assert error["id"] is not None and error["message"]
    after = reader.sync()
    assert (after["version"], after["state"]) == (before["version"], before["state"]) == (3, {"v": 2})
    assert quiet(reader, 0.1) == []  # no patch went out
    assert writer.update(3, {"v": "won"})["version"] == 4  # the right base still works
    writer.close(), reader.close()
    baseline.assert_restored()


def test_two_tabs_racing_on_one_version_one_wins(server: ServerHandle, clients: Clients, baseline: Baseline) -> None:
    user = new_user()
    a, b = clients.open(user), clients.open(user)
    assert a.update(0, {"who": "a"})["version"] == 1
    stale = {"type": "update", "base_version": 0, "patch": {"who": "b"}}
    lost = b.request(stale, expected_errors=("version_conflict",))
    assert lost["code"] == "version_conflict" and lost["current_version"] == 1
    (patch,) = collect(b, 1, kind="patch")
    assert patch == {"type": "patch", "version": 1, "patch": {"who": "a"}}
    assert b.update(1, {"who": "b"})["version"] == 2  # rebased on the version it learned
    assert a.sync()["state"] == {"who": "b"}
    a.close(), b.close()
    baseline.assert_restored()


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ({"type": "update", "base_version": -1, "patch": {}}, "invalid_field", "base_version"),
        ({"type": "update", "base_version": 0, "patch": "x"}, "invalid_field", "patch"),
        ({"type": "update", "base_version": 0}, "missing_field", "patch"),
    ],
    ids=["negative-base", "patch-not-object", "no-patch"],
)
def test_invalid_updates_change_nothing(
    server: ServerHandle, clients: Clients, message: dict[str, Any], code: str, field: str
) -> None:
    user = new_user()
    client = clients.open(user)
    with pytest.raises(ProtocolError) as caught:
        client.request(message, timeout=CLIENT_TIMEOUT)
    assert (caught.value.code, caught.value.frame.get("field")) == (code, field)
    snap = client.sync()
    assert (snap["version"], snap["state"]) == (0, {})
