"""The exceptions' text: Locust groups failures by it and tests assert on the codes."""

from __future__ import annotations

from client.errors import ConnectionClosed, HandshakeRejected, ProtocolError, SocketproofError, Timeout


def test_handshake_rejected_parses_the_protocol_body() -> None:
    error = HandshakeRejected.from_response(401, b'{"error": "invalid_token", "message": "bad signature"}')
    assert (error.status, error.code, error.message) == (401, "invalid_token", "bad signature")
    assert str(error) == "invalid_token (HTTP 401): bad signature"
    assert isinstance(error, SocketproofError)


def test_handshake_rejected_without_a_protocol_body_is_not_websocket() -> None:
    for body in (b"<html>nope</html>", None, b'{"detail": "x"}'):
        error = HandshakeRejected.from_response(404, body)
        assert error.code == "not_websocket"
        assert "404" in str(error)


def test_protocol_error_keeps_the_frame() -> None:
    frame = {"type": "error", "code": "version_conflict", "id": 7, "current_version": 3, "message": "stale"}
    error = ProtocolError.from_frame(frame)
    assert error.code == "version_conflict"
    assert error.frame["current_version"] == 3
    assert str(error) == "version_conflict: stale"


def test_connection_closed_and_timeout_text() -> None:
    assert str(ConnectionClosed(1008, "heartbeat timeout")) == "connection closed with 1008: heartbeat timeout"
    assert str(ConnectionClosed(1000)) == "connection closed with 1000"
    assert "without a close frame" in str(ConnectionClosed(None, ""))
    assert str(Timeout("no reply")) == "timeout: no reply"
    assert str(Timeout()) == "timeout"
