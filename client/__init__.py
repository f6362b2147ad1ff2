"""The one Socketproof client: a protocol-free transport plus adapters, used by the tests
and the Locust users alike. `Client` speaks any adapter; `ProtocolClient` is the same
client on the `socketproof` adapter, with docs/protocol.md's verbs."""

from client.deps import installed

with installed():  # websocket-client, wsproto or PyJWT missing: one line, exit 2
    from client.adapter import SessionContext, Stamp
    from client.client import Client
    from client.errors import ConnectionClosed, HandshakeRejected, ProtocolError, SocketproofError, Timeout
    from client.hooks import ConnectionHooks
    from client.protocol_client import ProtocolClient, Session
    from client.reporting import REQUEST_TYPE
    from client.tokens import DEFAULT_SECRET, default_secret, mint_admin_token, mint_token
    from client.transport import HandshakeResponse, State
    from client.urls import normalize_url

__all__ = [
    "DEFAULT_SECRET",
    "REQUEST_TYPE",
    "Client",
    "ConnectionClosed",
    "ConnectionHooks",
    "HandshakeRejected",
    "HandshakeResponse",
    "ProtocolClient",
    "ProtocolError",
    "Session",
    "SessionContext",
    "SocketproofError",
    "Stamp",
    "State",
    "Timeout",
    "default_secret",
    "mint_admin_token",
    "mint_token",
    "normalize_url",
]
