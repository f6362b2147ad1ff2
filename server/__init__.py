"""The Socketproof reference server: a correct, small implementation of docs/protocol.md.

`create_app` is imported lazily so that `python -m server` can monkey-patch with gevent
before anything imports ssl or socket.
"""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from server.app import create_app

        return create_app
    raise AttributeError(name)
