"""client/adapters/stomp_frames.py against the frames printed in the STOMP 1.2 specification
(`^@` there is the NUL octet, written \\x00 here), then the escaping rules, heart-beats,
content-length and hostile input."""

from __future__ import annotations

import pytest

from client.adapters.stomp_frames import (
    HEARTBEAT,
    StompFrame,
    StompFrameError,
    decode,
    decode_one,
    negotiate_heart_beat,
    parse_heart_beat,
)

# -- the specification's own frames, octet for octet ---------------------------------------

SPEC_CONNECT = b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\x00"
SPEC_CONNECTED = b"CONNECTED\nversion:1.2\n\n\x00"
SPEC_SEND = b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\x00"
SPEC_SEND_RECEIPT = b"SEND\ndestination:/queue/a\nreceipt:message-12345\n\nhello queue a\x00"
SPEC_SUBSCRIBE = b"SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n\x00"
SPEC_UNSUBSCRIBE = b"UNSUBSCRIBE\nid:0\n\n\x00"
SPEC_MESSAGE = (b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\n"
                b"hello queue a\x00")
SPEC_RECEIPT = b"RECEIPT\nreceipt-id:message-12345\n\n\x00"
SPEC_ERROR_BODY = (b"The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n"
                   b"-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n")
SPEC_ERROR = (b"ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\n"
              b"message:malformed frame received\n\n" + SPEC_ERROR_BODY + b"\x00")
SPEC_REPEATED = b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00"
SPEC_DISCONNECT = b"DISCONNECT\nreceipt:77\n\x00"  # as printed: no blank line before the NUL
SPEC_RECEIPT_77 = b"RECEIPT\nreceipt-id:77\n\x00"


def test_the_spec_connect_and_connected_decode_and_encode_back() -> None:
    connect = decode_one(SPEC_CONNECT)
    assert connect == StompFrame("CONNECT", (("accept-version", "1.2"), ("host", "stomp.github.org")))
    assert connect.encode() == SPEC_CONNECT
    connected = decode_one(SPEC_CONNECTED)
    assert connected.command == "CONNECTED" and connected["version"] == "1.2" and connected.body == b""
    assert connected.encode() == SPEC_CONNECTED


def test_the_spec_send_without_content_length_reads_to_the_nul() -> None:
    send = decode_one(SPEC_SEND)
    assert send.command == "SEND"
    assert send.get("destination") == "/queue/a" and send.get("content-type") == "text/plain"
    assert send.body == b"hello queue a\n"
    assert send.encode(content_length=False) == SPEC_SEND
    assert send.encode() == SPEC_SEND.replace(b"text/plain\n", b"text/plain\ncontent-length:14\n")


def test_the_spec_subscribe_unsubscribe_and_receipt_frames() -> None:
    subscribe = decode_one(SPEC_SUBSCRIBE)
    assert subscribe.headers == (("id", "0"), ("destination", "/queue/foo"), ("ack", "client"))
    assert subscribe.encode() == SPEC_SUBSCRIBE
    assert decode_one(SPEC_UNSUBSCRIBE).encode() == SPEC_UNSUBSCRIBE
    receipt = decode_one(SPEC_RECEIPT)
    assert receipt.command == "RECEIPT" and receipt["receipt-id"] == "message-12345"
    sent = decode_one(SPEC_SEND_RECEIPT)
    assert sent["receipt"] == "message-12345" and sent.text == "hello queue a"


def test_the_spec_message_keeps_message_id_subscription_and_body() -> None:
    message = decode_one(SPEC_MESSAGE)
    assert message.command == "MESSAGE"
    assert (message["subscription"], message["message-id"], message["destination"]) == ("0", "007", "/queue/a")
    assert message.body == b"hello queue a"
    assert message.encode(content_length=False) == SPEC_MESSAGE


def test_the_spec_error_frame_reads_exactly_its_content_length() -> None:
    error = decode_one(SPEC_ERROR)
    assert error.command == "ERROR"
    assert error["message"] == "malformed frame received"
    assert len(error.body) == 170 and error.body == SPEC_ERROR_BODY
    assert error.encode() == SPEC_ERROR  # content-length already there: not written twice


def test_of_repeated_headers_the_first_is_the_value_and_all_are_kept() -> None:
    frame = decode_one(SPEC_REPEATED)
    assert frame["foo"] == "World"
    assert frame.headers == (("foo", "World"), ("foo", "Hello"))
    assert frame.encode() == SPEC_REPEATED


def test_the_spec_disconnect_and_receipt_without_a_blank_line_are_read() -> None:
    disconnect = decode_one(SPEC_DISCONNECT)
    assert disconnect == StompFrame("DISCONNECT", (("receipt", "77"),))
    assert disconnect.encode() == b"DISCONNECT\nreceipt:77\n\n\x00"  # written with the blank line
    assert decode_one(SPEC_RECEIPT_77)["receipt-id"] == "77"


# -- value encoding ---------------------------------------------------------------------------


def test_header_escapes_of_stomp_1_2_both_ways() -> None:
    frame = StompFrame.make("SEND", [("destination", "/queue/a"), ("we:ird\\", "line1\nline2\r:end\\")])
    wire = frame.encode()
    assert b"we\\cird\\\\:line1\\nline2\\r\\cend\\\\\n" in wire
    assert decode_one(wire) == frame
    assert decode_one(b"MESSAGE\nk\\c:v\\\\n\n\x00")["k:"] == "v\\n"  # \\\\ then n: a backslash and an n


def test_an_undefined_escape_is_a_fatal_error() -> None:
    with pytest.raises(StompFrameError, match="undefined escape"):
        decode(b"MESSAGE\nfoo:a\\tb\n\n\x00")
    with pytest.raises(StompFrameError, match="undefined escape"):
        decode(b"MESSAGE\nfoo:ends with\\\n\n\x00")


def test_connect_and_connected_are_not_escaped() -> None:
    connected = decode_one(b"CONNECTED\nserver:RabbitMQ/3.10.8\nsession:a\\cb\n\n\x00")
    assert connected["session"] == "a\\cb"  # no unescaping in CONNECTED
    connect = StompFrame.make("CONNECT", {"login": "a\\b", "passcode": "p:w"})
    assert connect.encode() == b"CONNECT\nlogin:a\\b\npasscode:p:w\n\n\x00"
    with pytest.raises(StompFrameError, match="CR, LF"):
        StompFrame.make("CONNECT", {"passcode": "two\nlines"}).encode()


def test_values_are_never_trimmed_and_utf8_is_kept() -> None:
    frame = decode_one("MESSAGE\n a : b \ndestination:/topic/café\n\n\x00")
    assert frame[" a "] == " b "
    assert frame["destination"] == "/topic/café"


def test_crlf_line_ends_are_read() -> None:
    frame = decode_one(b"MESSAGE\r\nmessage-id:1\r\ndestination:/topic/x\r\n\r\nbody\x00\r\n")
    assert frame.headers == (("message-id", "1"), ("destination", "/topic/x")) and frame.body == b"body"


# -- bodies -------------------------------------------------------------------------------------


def test_content_length_carries_nul_octets_in_the_body() -> None:
    frame = StompFrame.make("SEND", {"destination": "/queue/a"}, b"a\x00b")
    wire = frame.encode()
    assert wire == b"SEND\ndestination:/queue/a\ncontent-length:3\n\na\x00b\x00"
    assert decode_one(wire).body == b"a\x00b"


def test_only_send_message_and_error_carry_a_body() -> None:
    with pytest.raises(StompFrameError, match="must not have a body"):
        StompFrame.make("SUBSCRIBE", {"id": "0"}, "x").encode()


def test_text_encoding_for_websocket_text_messages() -> None:
    assert StompFrame.make("SEND", {"destination": "/topic/a"}, "é").encode_text() == \
        "SEND\ndestination:/topic/a\ncontent-length:2\n\né\x00"
    with pytest.raises(StompFrameError, match="binary message"):
        StompFrame.make("SEND", {"destination": "/topic/a"}, b"\xff").encode_text()


# -- heart-beats and several frames in one message -------------------------------------------


def test_a_bare_eol_is_a_heart_beat_and_eols_after_a_nul_belong_to_the_frame() -> None:
    assert decode(b"\n") == [HEARTBEAT]
    assert decode("\r\n\n") == [HEARTBEAT, HEARTBEAT]
    assert HEARTBEAT.encode() == b"\n"
    frames = decode(SPEC_RECEIPT + b"\n\n" + SPEC_CONNECTED)
    assert [frame.command for frame in frames] == ["RECEIPT", "CONNECTED"]  # type: ignore[union-attr]
    assert decode(b"\n" + SPEC_RECEIPT) == [HEARTBEAT, decode_one(SPEC_RECEIPT)]
    with pytest.raises(StompFrameError, match="found 2"):
        decode_one(SPEC_RECEIPT + SPEC_RECEIPT)


def test_heart_beat_header_and_the_spec_negotiation() -> None:
    assert parse_heart_beat(None) == (0, 0)
    assert parse_heart_beat("10000,10000") == (10000, 10000)
    # client can send every 4 s and wants 10 s; server can send every 5 s and wants 1 s
    assert negotiate_heart_beat((4000, 10000), (5000, 1000)) == (4000, 10000)
    assert negotiate_heart_beat((0, 10000), (5000, 1000)) == (0, 10000)
    assert negotiate_heart_beat((4000, 0), (5000, 1000)) == (4000, 0)
    for bad in ("10", "1,2,3", "-1,0", "a,b", "1 ,2", ""):
        with pytest.raises(StompFrameError, match="heart-beat"):
            parse_heart_beat(bad)


# -- hostile input: one error, never anything else -------------------------------------------


@pytest.mark.parametrize("data", [
    b"MESSAGE\ndestination:/a\n\nno nul",                      # no terminator
    b"MESSAGE\ndestination:/a",                                # headers cut off
    b"MESSAGE\ncontent-length:10\n\nshort\x00",                # content-length past the end
    b"MESSAGE\ncontent-length:2\n\nabc\x00",                   # no NUL where content-length ends
    b"MESSAGE\ncontent-length:-1\n\n\x00",
    b"MESSAGE\ncontent-length:99999999999999999999\n\n\x00",
    b"MESSAGE\nno colon here\n\n\x00",
    b"MESSAGE\n:empty name\n\n\x00",
    b"MES SAGE\n\n\x00",
    b"\x00",
    b"MESSAGE\nk:\xff\xfe\n\n\x00",                            # not UTF-8
])
def test_malformed_frames_raise_stomp_frame_error(data: bytes) -> None:
    with pytest.raises(StompFrameError):
        decode(data)


def test_the_header_count_is_bounded() -> None:
    many = b"MESSAGE\n" + b"h:v\n" * 11 + b"\n\x00"
    assert len(decode_one(many, max_headers=11).headers) == 11
    with pytest.raises(StompFrameError, match="more than 10 headers"):
        decode(many, max_headers=10)
