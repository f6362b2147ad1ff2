"""Locust's request statistics for one client: each operation fired once, with its true time.

Like `locust/contrib/mqtt.py`, the client fires Locust's `request` event itself, when an
operation ends: a round trip when its reply arrives (the reply's receive time, not when
the waiting greenlet woke), a send without an answer once it is sent, a failure with its
exception. Everything is `request_type` "WS", with the connection's label as context.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from client.adapter import Frame

REQUEST_TYPE = "WS"
"""Locust `request_type` of everything the client reports."""


def wire_length(frame: Frame) -> int:
    """Bytes on the wire for a message (Locust's response_length): a text frame is UTF-8, so a
    non-ASCII str is longer than its character count. `isascii()` is O(1) on a str."""
    if isinstance(frame, str) and not frame.isascii():
        return len(frame.encode("utf-8", "surrogatepass"))
    return len(frame)


class Reporter:
    """Fires `event` (Locust's `environment.events.request`; None: reports nothing) for the
    connection labelled `label`."""

    __slots__ = ("event", "label", "_context")

    def __init__(self, event: Any, label: str) -> None:
        self.event = event
        self.label = label
        self._context: dict[str, Any] | None = None  # made on the first report

    def report(self, name: str, t0: float, length: int, response: Any, exc: BaseException | None,
               t_end: float | None = None) -> None:
        """One operation `name` that began at `t0` (perf_counter) and ended at `t_end` (now when None)."""
        event = self.event
        if event is not None:
            event.fire(
                request_type=REQUEST_TYPE,
                name=name,
                response_time=((perf_counter() if t_end is None else t_end) - t0) * 1000.0,
                response_length=length,
                response=response,
                exception=exc,
                context=self._context or self._new_context(),
            )

    def failed(self, name: str, t0: float, exc: BaseException) -> None:
        """Operation `name`, begun at `t0`, failed now with `exc`."""
        self.report(name, t0, 0, None, exc)

    def _new_context(self) -> dict[str, Any]:
        self._context = {"label": self.label}
        return self._context
