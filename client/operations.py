"""What a caller sends: request, publish, subscribe, a raw frame, each reported to Locust.

A round trip registers a wake-up slot (client/waiting.py) under the request's correlation
key before sending; the reply's arrival (client/receiving.py) releases it. Each operation
fires Locust's request event once with its true time (client/reporting.py) and tells the
history recorder what was published and owed.
"""

from __future__ import annotations

import time
from time import perf_counter
from typing import Any

from client.adapter import AdapterSession, Frame, Reply, Stamp
from client.client_base import ClientBase
from client.errors import ConnectionClosed, SocketproofError, Timeout
from client.transport import State
from client.waiting import new_slot

UNACKED_SUBSCRIBE_GRACE = 1.0
"""A subscribe nothing acknowledges (graphql-transport-ws) counts from this many seconds after
it was sent: the server may register it only after messages published meanwhile, which the
connection then never owed."""


class Operations(ClientBase):
    """The outbound half of `Client`: each operation waits for its answer or fails it."""

    def request(
        self,
        name: str,
        body: Any = None,
        timeout: float | None = None,
        *,
        report_as: str | None = None,
        expected_errors: tuple[str, ...] = (),
    ) -> Any:
        """A request/reply round trip through the adapter; returns the reply's body.

        Raises the reply's error (ProtocolError...), Timeout or ConnectionClosed. An error
        whose code is in `expected_errors` is an answer, not a failure.
        """
        session = self._open_session()
        corr, frame = session.request(name, body)
        return self._round_trip(corr, frame, report_as or name, timeout, expected_errors).body

    def publish(
        self, channel: str, stamp: Stamp, payload: str, timeout: float | None = None,
        *, expected_errors: tuple[str, ...] = (),
    ) -> Any:
        """Publish a stamped payload; with an ack, wait for it (the `publish` time). A refusal
        whose code is in `expected_errors` (e.g. `queue_full`) is an answer: the stamp is
        then owed to nobody, and the request counts as a success."""
        session = self._open_session()
        corr, frame = session.publish(channel, stamp, payload)
        recording = self._recording
        if recording is not None:
            recording.published(stamp)
        if corr is None:
            t0 = perf_counter()
            try:
                self._send(self._transport, frame)
            except SocketproofError as exc:
                if recording is not None:
                    recording.publish_failed(stamp, "send_failed")
                self._reporter.failed("publish", t0, exc)
                raise
            self._reporter.report("publish", t0, len(frame), None, None)
            return None
        if recording is not None:
            recording.awaiting_ack(corr, stamp)
        try:
            return self._round_trip(corr, frame, "publish", timeout, expected_errors).body
        except SocketproofError as exc:
            if recording is not None:
                recording.unanswered(corr, exc)
            raise

    def subscribe(self, channel: str, timeout: float | None = None) -> Any:
        """Join a channel; with an ack, wait for it (the `subscribe` time)."""
        session = self._open_session()
        corr, frame = session.subscribe(channel)
        if corr is None:
            t0 = perf_counter()
            self._send_or_fire("subscribe", t0, frame)
            result = None
            since = time.time() + UNACKED_SUBSCRIBE_GRACE
        else:
            result = self._round_trip(corr, frame, "subscribe", timeout, ()).body
            since = time.time()
        if self._recording is not None:
            self._recording.hooks.subscribed(channel, since)
        return result

    def send_frame(self, frame: Frame) -> None:
        """Send a frame as it is (tests: bad input, protocol messages with no reply)."""
        transport = self._transport
        if transport is None:
            raise ConnectionClosed(None, "not connected")
        self._send(transport, frame)

    def _send_or_fire(self, name: str, t0: float, frame: Frame) -> None:
        try:
            self._send(self._transport, frame)
        except SocketproofError as exc:
            self._reporter.failed(name, t0, exc)
            raise
        self._reporter.report(name, t0, len(frame), None, None)

    def _open_session(self) -> AdapterSession:
        session = self._session
        if session is None or self.state is not State.OPEN:
            raise self._not_open()
        return session

    def _round_trip(
        self, corr: Any, frame: Frame, name: str, timeout: float | None, expected_errors: tuple[str, ...]
    ) -> Reply:
        pending = self._pending
        if pending is None:
            pending = self._pending = {}
        if corr in pending:
            raise ValueError(f"request id {corr!r} is already pending")
        slot = new_slot()
        pending[corr] = slot
        t0 = perf_counter()
        transport = self._transport
        if transport is None or transport.state is not State.OPEN:  # checked after registering
            pending.pop(corr, None)
            self._failed(name, t0, self._not_open())
        recording = self._recording
        if recording is not None:
            recording.hooks.frame("out", name)
        try:
            self._send(transport, frame)  # type: ignore[arg-type]
        except SocketproofError as exc:
            pending.pop(corr, None)
            self._failed(name, t0, exc)
        if not slot.wait(self.timeout if timeout is None else timeout):
            if pending.pop(corr, None) is not None or not slot.wait(1.0):
                self._failed(name, t0, Timeout(f"no reply to {name!r} id={corr!r}"))
        reply: Reply | None = slot.reply
        if reply is None:
            error = slot.error
            self._failed(name, t0, error if isinstance(error, SocketproofError) else ConnectionClosed(None, ""))
        exc = reply.error  # type: ignore[union-attr]
        if exc is not None and getattr(exc, "code", None) in expected_errors:
            exc = None
        self._reporter.report(name, t0, slot.length, reply.body, exc, slot.t_recv)  # type: ignore[union-attr]
        if exc is not None:
            raise exc
        return reply  # type: ignore[return-value]

    def _failed(self, name: str, t0: float, exc: SocketproofError) -> Any:
        self._reporter.failed(name, t0, exc)
        raise exc

    def _not_open(self) -> ConnectionClosed:
        transport = self._transport
        if transport is None:
            return ConnectionClosed(None, "not connected")
        if transport.state is State.CLOSED:
            return self._close_info()
        return ConnectionClosed(None, f"connection is {self.state.value}")
