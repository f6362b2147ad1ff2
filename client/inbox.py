"""The client's inbox: frames nobody was waiting for, kept for a test or a flow to read.

Bounded (a reader that never reads must not grow a Locust process without end): beyond
`LIMIT` the oldest push is dropped and counted. The end of each connection puts a mark
that wakes a waiting reader; a mark left by an earlier connection is skipped.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from time import perf_counter
from typing import Any

from client.errors import ConnectionClosed, Timeout

LIMIT = 10_000
"""Unread pushes kept; beyond it the oldest is dropped and counted in `dropped`."""
_CLOSED_MARK = object()

Ended = Callable[[], "ConnectionClosed | None"]
"""Asked when a reader meets a mark: how the connection ended, or None if it is live again."""


class Inbox(queue.Queue):  # type: ignore[type-arg]
    """Unread pushes, oldest first (a Queue: readers may wait in another thread or greenlet)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def add(self, body: Any) -> None:
        """Keep `body`, dropping the oldest when full."""
        if self.qsize() >= LIMIT:
            try:
                self.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
        self.put_nowait(body)

    def mark_closed(self) -> None:
        """The connection ended: wake whoever waits in `next()`."""
        self.put_nowait(_CLOSED_MARK)

    def next(self, timeout: float, ended: Ended) -> Any:
        """The oldest push, waiting up to `timeout` seconds. Raises Timeout, or the connection's
        ConnectionClosed once it has ended and nothing is left to read."""
        deadline = perf_counter() + timeout
        while True:
            try:
                body = self.get(timeout=max(0.0, deadline - perf_counter()))
            except queue.Empty:
                raise Timeout(f"no push within {timeout}s") from None
            if body is not _CLOSED_MARK:
                return body
            closed = ended()
            if closed is not None:
                self.put_nowait(_CLOSED_MARK)  # keep it for the next caller
                raise closed
            # a mark left by an earlier connection: skip it

    def drain(self, ended: Ended) -> list[Any]:
        """Every push kept so far, without waiting."""
        out: list[Any] = []
        while True:
            try:
                body = self.get_nowait()
            except queue.Empty:
                return out
            if body is not _CLOSED_MARK:
                out.append(body)
            elif ended() is not None:
                self.put_nowait(body)
                return out
