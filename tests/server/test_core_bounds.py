"""The core's bounds against a hostile client (issue 12, findings 4 and 5): standard JSON only,
a state document no bigger than a frame, retention bounded in users and bytes in total."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tracemalloc

import jwt
import pytest

from server.auth import AuthError, verify_token
from server.config import ConfigError, load_settings
from server.core import ENTRY_OVERHEAD, Hub, frame_bytes, parse_json
from tests.server.test_core import SECRET, T0, Net, make_hub


def retained(hub: Hub) -> int:
    """The retained bytes recomputed from the logs: the hub's running count must equal it."""
    return sum(entry.size for record in hub.users.values() for entry in record.log)


# -- finding 4: NaN and Infinity are not JSON ---------------------------------------------------

NON_STANDARD = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1, NaN]", '{"a": {"b": Infinity}}']


@pytest.mark.parametrize("value", NON_STANDARD)
def test_send_with_a_non_standard_number_is_bad_json_and_reaches_nobody(value: str) -> None:
    net = Net(make_hub())
    sender, victim = net.connect("mallory"), net.connect("victim")
    net.take(sender), net.take(victim)
    reply = net.reply(sender, f'{{"type":"send","id":1,"to":"victim","data":{value}}}')
    assert reply["type"] == "error" and reply["code"] == "bad_json", reply
    assert net.take(victim) == []
    assert not net.hub.users["victim"].log


@pytest.mark.parametrize("value", NON_STANDARD)
def test_echo_and_update_refuse_non_standard_numbers(value: str) -> None:
    net = Net(make_hub())
    conn = net.connect("alice")
    assert net.reply(conn, f'{{"type":"echo","id":1,"data":{value}}}')["code"] == "bad_json"
    assert net.reply(conn, f'{{"type":"update","id":2,"base_version":0,"patch":{{"k":{value}}}}}')["code"] == "bad_json"
    assert net.hub.users["alice"].state == {}


def test_standard_numbers_still_pass() -> None:
    assert parse_json('{"a": [1, -2.5, 1e300, 12345678901234567890]}') == {
        "a": [1, -2.5, 1e300, 12345678901234567890]
    }


@pytest.mark.parametrize("exp", ["1e999", "-1e999", "NaN", "1" + "0" * 400])
def test_token_exp_must_be_finite(exp: str) -> None:
    """PyJWT reads `exp: 1e999` as Infinity: a token that never expires, and `token_exp: Infinity`
    in the welcome. It is refused as invalid_token (a 401 at the handshake)."""
    header = jwt.encode({"sub": "alice", "exp": T0 + 60}, SECRET, algorithm="HS256").split(".")[0]
    payload = base64.urlsafe_b64encode(f'{{"sub":"alice","exp":{exp}}}'.encode()).rstrip(b"=").decode()
    signing = f"{header}.{payload}".encode()
    signature = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), signing, hashlib.sha256).digest()).rstrip(b"=")
    token = f"{header}.{payload}.{signature.decode()}"
    settings = load_settings({"jwt_secret": SECRET}, environ={})
    with pytest.raises(AuthError) as refused:
        verify_token(token, settings, T0)
    assert refused.value.code == "invalid_token" and "exp" in refused.value.message


# -- finding 5: the state document --------------------------------------------------------------


def test_an_update_that_would_make_the_snapshot_too_big_is_refused_and_changes_nothing() -> None:
    limit = 4096
    net = Net(make_hub(max_message_bytes=limit))
    tab, other = net.connect("alice"), net.connect("alice")
    net.take(tab), net.take(other)
    version = 0
    for n in range(1000):
        reply = net.reply(tab, {"type": "update", "id": n, "base_version": version, "patch": {f"key{n}": "x" * 40}})
        if reply["type"] == "error":
            break
        version = reply["version"]
    else:
        pytest.fail("the state document grew without bound")
    assert reply["code"] == "state_too_large" and reply["current_version"] == version
    assert "max_message_bytes" in reply["message"]
    record = net.hub.users["alice"]
    assert record.version == version and len(record.state) == version
    snapshot = net.reply(tab, {"type": "sync", "id": "s"})
    assert snapshot["version"] == version
    assert limit - 100 < frame_bytes(snapshot) <= limit
    assert [f["type"] for f in net.take(other)] == ["patch"] * version  # no patch for the refused update
    shrink = net.reply(tab, {"type": "update", "id": "d", "base_version": version, "patch": {"key0": None}})
    assert shrink == {"type": "ack", "version": version + 1, "id": "d"}


def test_frame_bytes_counts_utf8_and_escaped_surrogates() -> None:
    assert frame_bytes({"a": "é"}) == len('{"a":"é"}'.encode())
    assert frame_bytes({"a": "\ud800"}) == len('{"a":"\\ud800"}')


# -- finding 5: retention in total ---------------------------------------------------------------


def test_made_up_recipients_stop_at_max_retained_users_with_retention_full() -> None:
    net = Net(make_hub(max_retained_users=10))
    sender = net.connect("mallory")
    net.take(sender)
    codes = [net.reply(sender, {"type": "send", "id": n, "to": f"ghost{n}", "data": n}).get("code") for n in range(30)]
    assert codes[:9] == [None] * 9  # mallory's own record is one of the 10
    assert set(codes[9:]) == {"retention_full"}
    assert len(net.hub.users) == 10
    assert net.hub.stats(T0)["rejected_retention_full"] == 21
    # a known recipient still gets messages; after queue_ttl the ghosts are forgotten
    assert net.reply(sender, {"type": "send", "id": "k", "to": "ghost0", "data": 1})["type"] == "ack"
    later = T0 + 2 * net.hub.settings.queue_ttl + 1
    assert net.reply(sender, {"type": "send", "id": "n", "to": "newcomer", "data": 1}, now=later)["type"] == "ack"


def test_retained_bytes_are_bounded_counted_and_given_back() -> None:
    bound = 64 * 1024
    net = Net(make_hub(max_retained_bytes=bound, queue_size=1000))
    sender = net.connect("mallory")
    net.take(sender)
    payload = "x" * 1000
    replies = [net.reply(sender, {"type": "send", "id": n, "to": "victim", "data": payload}) for n in range(100)]
    accepted = [r for r in replies if r["type"] == "ack"]
    refused = [r for r in replies if r["type"] == "error"]
    assert refused and {r["code"] for r in refused} == {"retention_full"}
    assert "max_retained_bytes" in refused[0]["message"]
    assert net.hub.retained_bytes == retained(net.hub) <= bound
    assert net.hub.retained_bytes > bound - 1100 - ENTRY_OVERHEAD
    assert [r["seq"] for r in accepted] == list(range(1, len(accepted) + 1))  # a refusal uses no seq
    assert net.hub.stats(T0)["retained_bytes"] == net.hub.retained_bytes
    # expiry gives the bytes back
    net.hub.sweep(T0 + net.hub.settings.queue_ttl + 1)
    assert net.hub.retained_bytes == retained(net.hub) == 0


def test_retention_window_eviction_gives_bytes_back() -> None:
    net = Net(make_hub(queue_size=3))
    sender = net.connect("mallory")
    net.send_numbered(sender, "victim", 10)
    assert len(net.hub.users["victim"].log) == 3
    assert net.hub.retained_bytes == retained(net.hub) > 0


def test_a_hostile_client_cannot_grow_core_memory_past_the_bounds() -> None:
    """Measured with tracemalloc: 3,000 sends of 20 kB to made-up recipients and 2,000 updates
    adding keys would hold ~60 MB without the bounds; with them, about the bounds (1 MiB + 100
    users + one 64 KiB state document)."""
    hub = make_hub(max_retained_users=100, max_retained_bytes=1024 * 1024, rate_limit=0)
    net = Net(hub)
    mallory = net.connect("mallory")
    net.take(mallory)
    big = json.dumps({"type": "send", "id": 1, "to": "", "data": "y" * 20_000}, separators=(",", ":"))
    acks = 0
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(3000):
            for item in hub.handle(mallory, big.replace('"to":""', f'"to":"ghost{n}"'), T0):
                acks += item.message["type"] == "ack"
        for n in range(3000):  # small ones: the number of recipients is the bound now
            hub.handle(mallory, json.dumps({"type": "send", "id": n, "to": f"small{n}", "data": n}), T0)
        version = 0
        for n in range(2000):
            frame = json.dumps({"type": "update", "base_version": version, "patch": {f"k{n}": "z" * 30}})
            for item in hub.handle(mallory, frame, T0):
                version = item.message.get("version", version)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 40 < acks < 60  # the byte bound held the big ones
    assert len(hub.users) == 100  # the small ones reached the user bound
    assert hub.retained_bytes == retained(hub) <= 1024 * 1024
    assert frame_bytes({"type": "snapshot", "version": version, "state": hub.users["mallory"].state}) <= 65536
    assert grown < 3 * 1024 * 1024, f"core memory grew by {grown:,} bytes"


@pytest.mark.parametrize(("name", "value"), [("max_retained_users", "0"), ("max_retained_bytes", "10")])
def test_bad_bounds_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, environ={})


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings.max_retained_users == 10000 and settings.max_retained_bytes == 64 * 1024 * 1024


def test_hub_counts_sizes_from_the_frame() -> None:
    hub = make_hub()
    net = Net(hub)
    sender = net.connect("a")
    frame = '{"type":"send","id":1,"to":"b","data":"hello"}'
    hub.handle(sender, frame, T0)
    assert hub.users["b"].log[0].size == len(frame) + ENTRY_OVERHEAD
