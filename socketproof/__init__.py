"""Socketproof: load and reliability testing for WebSocket services, on Locust.

The public surface for a locustfile is `from socketproof import WebSocketUser, reported`
(docs/flows.md). The package is grouped by job:

- `socketproof.target`: reaching the user's service (TLS, handshake extras, tokens, the
  pre-flight, the embedded reference server);
- `socketproof.run`: the Locust run (options, the plugin's listeners, the users, the run state,
  progress, the web UI's start guard);
- `socketproof.verdicts`: judging a run (the checker behind Locust's events, thresholds,
  reports, the server's connection count);
- `socketproof.capacity`: capacity steps; `socketproof.proxy`: the WebSocket fault proxy.

Names are imported on first use, so `python -m socketproof.proxy` does not load Locust.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WebSocketUser", "reported"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from socketproof.run import users

        return getattr(users, name)
    raise AttributeError(f"module 'socketproof' has no attribute {name!r}")
