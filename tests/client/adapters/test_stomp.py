"""The STOMP session with literal frames: no socket, no broker (tests/socketproof/test_stomp_runs.py
runs it against a real RabbitMQ)."""

from __future__ import annotations

import pytest

from client.adapter import (
    HEARTBEAT,
    PUBLISH_ACK,
    ROUND_TRIP,
    SUBSCRIBE,
    Delivery,
    Failed,
    KeepAlive,
    Push,
    Ready,
    Reply,
    SessionContext,
    Stamp,
    UnsupportedOperation,
)
from client.adapters import AdapterSettings, build_adapter
from client.adapters.stomp import StompAdapter, StompSession

CONTEXT = SessionContext("user-1", "user-1#1", token="TOKEN")


def session(**values: object) -> StompSession:
    """No heart-beats unless asked (every inbound message would also be a KeepAlive)."""
    return StompAdapter(AdapterSettings(values={"stomp_heart_beat": 0, **values})).session(CONTEXT)


def connected(s: StompSession, heart_beat: str = "1000,1000") -> Ready:
    [ready] = s.receive(f"CONNECTED\nversion:1.2\nsession:sess-1\nheart-beat:{heart_beat}\n"
                        "server:RabbitMQ/3.10.8\n\n\x00")
    assert isinstance(ready, Ready)
    return ready


def test_built_in_with_its_capabilities() -> None:
    adapter = build_adapter("stomp", AdapterSettings())
    assert adapter.capabilities == {PUBLISH_ACK, SUBSCRIBE, HEARTBEAT}
    assert ROUND_TRIP not in adapter.capabilities
    assert build_adapter("stomp", AdapterSettings(values={"stomp_heart_beat": 0})).capabilities == {PUBLISH_ACK,
                                                                                                   SUBSCRIBE}
    assert adapter.default_path == "/ws"


def test_connect_with_login_and_passcode_and_heart_beat() -> None:
    s = session(stomp_login="guest", stomp_passcode="pw", stomp_host="vh", stomp_heart_beat=2000)
    handshake = s.handshake()
    assert handshake.path == "/ws" and handshake.subprotocols == ("v12.stomp", "v11.stomp")
    assert s.start() == ("CONNECT\naccept-version:1.2,1.1\nhost:vh\nlogin:guest\npasscode:pw\n"
                         "heart-beat:2000,2000\n\n\x00",)


def test_without_a_login_the_token_is_the_passcode() -> None:
    assert session(stomp_heart_beat=0).start() == (
        "CONNECT\naccept-version:1.2,1.1\nhost:/\npasscode:TOKEN\nheart-beat:0,0\n\n\x00",)


def test_connected_announces_the_servers_period_as_a_maximum_silence() -> None:
    """The server's period (max(sx, cy)) is announced as MAX_SILENCE: every inbound message, frame
    or heart-beat, is one KeepAlive, and the heartbeat check judges the silences between them."""
    s = session(stomp_heart_beat=500)
    ready = connected(s, "1000,0")
    assert ready.heartbeat == (1.0, 1.0) and ready.heartbeat_kind == "max_silence"
    assert ready.conn_id == "sess-1" and ready.info["server_heart_beat_ms"] == 1000
    assert s.receive("\n") == [KeepAlive()]
    s.subscribe("room-0")
    assert s.receive("RECEIPT\nreceipt-id:r1\n\n\x00") == [KeepAlive(), Reply("r1", body=None)]
    assert s.tick_interval is None and s.tick() == ()  # the server wants none (sy 0): the client sends none
    off = connected(session(stomp_heart_beat=0), "0,0")
    assert off.heartbeat is None and off.info["server_heart_beat_ms"] == 0


def test_the_client_sends_heart_beats_at_the_negotiated_period() -> None:
    s = session(stomp_heart_beat=500)
    assert s.tick() == ()  # nothing before CONNECTED
    ready = connected(s, "2000,4000")  # the server sends every 2 s at most, wants ours every 4 s
    assert ready.info["client_heart_beat_ms"] == 4000 and ready.heartbeat == (2.0, 2.0)
    assert s.tick_interval == 4.0 and s.tick() == ("\n",)


def test_a_heart_beat_before_connected_is_not_a_keepalive() -> None:
    assert session().receive("\n") == []


def test_a_refused_connect_is_failed_with_the_brokers_words() -> None:
    s = session()
    [failed] = s.receive("ERROR\nmessage:Bad CONNECT\ncontent-type:text/plain\n\n"
                         "Access refused for user 'socketproof'\n\n\n\n\x00")
    assert isinstance(failed, Failed)
    assert failed.error.code == "access_refused"
    text = str(failed.error)
    assert "Bad CONNECT" in text and "Access refused for user 'socketproof'" in text and "\n" not in text
    assert "--stomp-passcode" in text


def test_subscribe_and_publish_are_acked_by_their_receipts() -> None:
    s = session()
    connected(s)
    corr, frame = s.subscribe("room-0")
    assert frame == "SUBSCRIBE\nid:s1\ndestination:/topic/room-0\nack:auto\nreceipt:r1\n\n\x00"
    assert s.receive("RECEIPT\nreceipt-id:r1\n\n\x00") == [Reply(corr)]
    stamp = Stamp("user-1#1", "room-0", 1, 1.5)
    corr, frame = s.publish("room-0", stamp, stamp.encode())
    assert corr == "r2"
    assert frame == ("SEND\ndestination:/topic/room-0\ncontent-type:text/plain\nreceipt:r2\n"
                     f"content-length:{len(stamp.encode())}\n\n{stamp.encode()}\x00")
    assert s.receive("RECEIPT\nreceipt-id:r2\n\n\x00") == [Reply("r2")]


def test_message_is_a_delivery_with_stamp_and_message_id() -> None:
    s = session(stomp_destination="/exchange/amq.topic/{channel}")
    connected(s)
    _, frame = s.subscribe("room-1")
    assert "destination:/exchange/amq.topic/room-1\n" in frame
    stamp = Stamp("a", "room-1", 3, 2.0).encode()
    [delivery] = s.receive(f"MESSAGE\nsubscription:s1\ndestination:/exchange/amq.topic/room-1\n"
                           f"message-id:T_s1@@session-x@@7\nredelivered:false\ncontent-length:{len(stamp)}\n\n{stamp}\x00")
    assert delivery == Delivery("room-1", Stamp.find(stamp), stamp, message_id="T_s1@@session-x@@7")
    [stale] = s.receive(f"MESSAGE\nsubscription:s9\nmessage-id:1\n\n{stamp}\x00")
    assert isinstance(stale, Push) and stale.kind == "stale"


def test_errors_after_start_up() -> None:
    s = session()
    connected(s)
    [reply] = s.receive("ERROR\nreceipt-id:r5\nmessage:not_found\n\nno exchange 'x'\x00")
    assert isinstance(reply, Reply) and reply.corr == "r5" and reply.error is not None
    assert reply.error.code == "stomp_error" and "not_found" in str(reply.error)
    [push] = s.receive("ERROR\nmessage:Invalid destination\n\n'/bad' is not a valid destination\x00")
    assert isinstance(push, Push) and push.kind == "error" and push.code == "Invalid destination"


def test_bad_input_never_raises() -> None:
    s = session()
    [push] = s.receive("NOT A FRAME")
    assert isinstance(push, Push) and push.kind == "invalid"
    [failed] = s.receive("SEND\ndestination:/x\n\n\x00")
    assert isinstance(failed, Failed) and failed.error.code == "unexpected_frame"


def test_subprotocol_and_goodbye_and_no_echo() -> None:
    s = session()
    assert s.negotiated("v12.stomp") == () and s.negotiated(None) == ()
    [failed] = s.negotiated("mqtt")
    assert isinstance(failed, Failed) and failed.error.code == "subprotocol"
    assert s.goodbye() == ()
    connected(s)
    assert s.goodbye() == ("DISCONNECT\nreceipt:socketproof-disconnect\n\n\x00",)
    [receipt] = s.receive("RECEIPT\nreceipt-id:socketproof-disconnect\n\n\x00")
    assert isinstance(receipt, Push) and receipt.kind == "receipt"
    with pytest.raises(UnsupportedOperation):
        s.request("echo", "x")


def test_a_destination_without_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="--stomp-destination"):
        StompAdapter(AdapterSettings(values={"stomp_destination": "/topic/all"}))
