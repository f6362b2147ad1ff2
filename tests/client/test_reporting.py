"""client/reporting.py: what Locust's request event is fired with."""

from __future__ import annotations

from time import perf_counter

from client.reporting import REQUEST_TYPE, Reporter, wire_length
from tests.client.support import FakeRequestEvent


def test_wire_length_counts_utf8_bytes_of_text_and_bytes_as_they_are() -> None:
    assert wire_length("abc") == 3 and wire_length(b"\x00\xff") == 2
    assert wire_length("é") == 2 and wire_length("\U0001f600") == 4


def test_a_report_carries_the_time_the_length_and_the_label_as_context() -> None:
    event = FakeRequestEvent()
    reporter = Reporter(event, "alice-1")
    t0 = perf_counter()
    reporter.report("echo", t0, 12, {"ok": 1}, None, t_end=t0 + 0.25)
    reporter.report("publish", t0, 5, None, None)
    error = ValueError("refused")
    reporter.failed("connect", t0, error)
    echo, publish, connect = event.fired
    assert echo == {"request_type": REQUEST_TYPE, "name": "echo", "response_time": 250.0, "response_length": 12,
                    "response": {"ok": 1}, "exception": None, "context": {"label": "alice-1"}}
    assert publish["response_time"] >= 0 and publish["response_length"] == 5
    assert (connect["exception"], connect["response_length"], connect["response"]) == (error, 0, None)
    assert echo["context"] is connect["context"]  # one context per client, made once


def test_without_an_event_nothing_is_reported() -> None:
    reporter = Reporter(None, "x")
    reporter.report("echo", perf_counter(), 1, None, None)
    reporter.failed("echo", perf_counter(), ValueError())
    assert reporter._context is None
