"""The one Socketproof protocol client: tests and Locust users both import it from here."""

from client.deps import installed

with installed():  # websocket-client or PyJWT missing: one line, exit 2
    from client.connection import (
        REQUEST_TYPE,
        HandshakeResponse,
        ProtocolClient,
        RecorderHooks,
        Session,
        State,
        normalize_url,
    )
    from client.errors import ConnectionClosed, HandshakeRejected, ProtocolError, SocketproofError, Timeout
    from client.tokens import DEFAULT_SECRET, default_secret, mint_admin_token, mint_token

__all__ = [
    "DEFAULT_SECRET",
    "REQUEST_TYPE",
    "ConnectionClosed",
    "HandshakeRejected",
    "HandshakeResponse",
    "ProtocolClient",
    "ProtocolError",
    "RecorderHooks",
    "Session",
    "SocketproofError",
    "State",
    "Timeout",
    "default_secret",
    "mint_admin_token",
    "mint_token",
    "normalize_url",
]
