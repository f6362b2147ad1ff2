"""Fault switch parsing: every switch, and errors that name the bad part."""

from __future__ import annotations

import pytest

from server.faults import KNOWN_FAULTS, Faults, parse_faults


def test_empty_text_means_no_faults() -> None:
    assert parse_faults("") == Faults()
    assert parse_faults(" , ,") == Faults()
    assert Faults().active() == {}
    assert Faults().describe() == ""


def test_every_switch_parses() -> None:
    text = (
        "drop=0.05, duplicate=0.1,reorder=1,delay_ms=200,crash_on=echo,leak_connections,skip_heartbeat,"
        "accept_expired_tokens,accept_any_signature=true,no_queue_expiry=on,queue_unbounded=1,stale_snapshot=yes,"
        "replay_reorder,replay_drop,replay_duplicate,refuse_after_start=10s"
    )
    faults = parse_faults(text)
    assert faults == Faults(
        drop=0.05,
        duplicate=0.1,
        reorder=1.0,
        delay_ms=200.0,
        crash_on="echo",
        refuse_after_start=10.0,
        leak_connections=True,
        skip_heartbeat=True,
        accept_expired_tokens=True,
        accept_any_signature=True,
        no_queue_expiry=True,
        queue_unbounded=True,
        stale_snapshot=True,
        replay_reorder=True,
        replay_drop=True,
        replay_duplicate=True,
    )
    assert set(faults.active()) == set(KNOWN_FAULTS)


def test_active_and_describe_show_only_switches_that_are_on() -> None:
    faults = parse_faults("drop=0.5,leak_connections,crash_on=send")
    assert faults.active() == {"drop": 0.5, "crash_on": "send", "leak_connections": True}
    assert faults.describe() == "drop=0.5,crash_on=send,leak_connections"
    assert parse_faults(faults.describe()) == faults


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("explode", "'explode'"),
        ("drop", "fault 'drop' needs a value: drop takes drop=P (probability 0..1)"),
        ("drop=lots", "bad probability 'lots' in 'drop=lots': drop takes drop=P"),
        ("drop=1.5", "probability in 'drop=1.5' must be between 0 and 1, got 1.5"),
        ("duplicate=-0.1", "'duplicate=-0.1'"),
        ("reorder=", "bad probability '' in 'reorder='"),
        ("delay_ms=fast", "bad number 'fast' in 'delay_ms=fast': delay_ms takes delay_ms=MS"),
        ("delay_ms=-5", "number in 'delay_ms=-5' must be 0 or more, got -5"),
        ("delay_ms=inf", "'delay_ms=inf'"),
        ("delay_ms=nan", "'delay_ms=nan'"),
        ("crash_on", "'crash_on'"),
        ("crash_on=", "'crash_on'"),
        ("leak_connections=maybe", "'leak_connections'"),
        ("stale_snapshot=0", "'stale_snapshot'"),
    ],
)
def test_bad_fault_text_raises_value_error_naming_the_part(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_faults(text)
    assert named in str(caught.value)


def test_unknown_fault_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as caught:
        parse_faults("drop=0.1,teleport")
    message = str(caught.value)
    assert "'teleport'" in message
    for name in KNOWN_FAULTS:
        assert name in message


def test_refuse_after_start_takes_seconds() -> None:
    assert parse_faults("refuse_after_start=2.5s").refuse_after_start == 2.5
    with pytest.raises(ValueError, match="refuse_after_start=Ns"):
        parse_faults("refuse_after_start=10")


def test_refuse_after_start_answers_503_then_accepts_upgrades() -> None:
    import time

    from server.app import create_app

    app = create_app({"faults": "refuse_after_start=0.3s"})
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    answer = app.test_client().get("/ws", headers=headers)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    time.sleep(0.35)
    assert app.test_client().get("/ws", headers=headers).status_code == 401  # past it: on to the token check
