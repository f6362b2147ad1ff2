"""Values the reference server and the client must agree on, with no import between them."""

DEFAULT_SECRET = "socketproof-development-secret-change-me"
"""The reference server's documented development `jwt_secret` (docs/protocol.md): refused off
loopback by the server, used by the client when no secret is given."""
