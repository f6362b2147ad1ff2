"""The words of the pre-flight, progress and exit lines (pure functions: no sockets, no Locust run)."""

from __future__ import annotations

import os
import types

import locust  # noqa: F401 - first: gevent monkey-patches before client imports ssl (via jwt)
import pytest

from client.errors import HandshakeRejected
from client.tokens import DEFAULT_SECRET, default_secret
from socketproof.run import progress
from socketproof.run.options import LoadOptions
from socketproof.run.secret_options import StartupSecrets
from socketproof.target import preflight
from socketproof.verdicts.run_checker import pending

HOST = "ws://example.test:8765"


def finding(code: str, status: int = 401, message: str = "", options: LoadOptions | None = None,
            host: str = HOST) -> preflight.Finding:
    return preflight.rejected(host + "/ws", host, options or LoadOptions(), HandshakeRejected(status, code, message))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("ws://h:1/ws: [Errno 111] Connection refused", "connection refused"),
        ("ws://nope.invalid:1/ws: [Errno -2] Name or service not known", "unknown host name"),
        ("ws://h:1/ws: [Errno 101] Network is unreachable", "network unreachable"),
        ("ws://h:1/ws: [Errno 13] Permission denied", "Permission denied"),
    ],
)
def test_unreachable_reasons_are_short(message: str, reason: str) -> None:
    assert preflight.reason(message) == reason


def test_each_rejection_names_the_option_that_fixes_it() -> None:
    assert finding("unreachable", 0, "ws://x: [Errno 111] Connection refused") == preflight.Finding(
        True, f"cannot reach {HOST}/ws: connection refused; is the server running? (check --host)")
    assert "check --jwt-secret" in finding("invalid_token").message
    assert "--jwt-audience" in finding("invalid_token", options=LoadOptions(jwt_audience="chat")).message
    assert "clock" in finding("token_expired").message
    assert "--ws-path" in finding("not_found", 404).message
    assert "HTTP 404" in finding("not_websocket", 404).message
    with_path = finding("not_found", 404, options=LoadOptions(ws_path="/ws"), host=HOST + "/ws")
    assert "without the path, e.g. ws://example.test:8765" in with_path.message
    assert all(finding(code).fatal for code in ("invalid_token", "missing_token", "origin_not_allowed"))


def test_overload_is_a_warning_not_an_error() -> None:
    """A full or failing server is what a load test measures: the run goes ahead."""
    for code, status in (("connection_limit", 429), ("internal", 503)):
        assert not finding(code, status).fatal


def test_progress_line_says_elapsed_remaining_and_load() -> None:
    entry = types.SimpleNamespace(num_requests=40, name="echo", get_response_time_percentile=lambda p: 12.0)
    stats = types.SimpleNamespace(total=types.SimpleNamespace(num_requests=1204, num_failures=3),
                                  entries={("echo", "WS"): entry})
    runner = types.SimpleNamespace(stats=stats, user_count=20)
    assert progress.line(15.2, 60, runner, 80.26) == (
        "0:15 of 1:00 (0:45 left): 20 users, 1,204 requests, 3 failed, 80.3 req/s, slowest p95 echo 12 ms"
    )
    assert progress.line(75, None, runner, 1.0).startswith("1:15: 20 users")
    assert progress.interval(60) == 5.0 and progress.interval(3600) == 30.0 and progress.interval(None) == 10.0


def test_a_live_row_without_anomaly_is_pending_and_a_fail_stays() -> None:
    unknown = {"check": "loss", "verdict": "UNKNOWN", "anomalies": 0, "evidence": ""}
    failed = {"check": "ordering", "verdict": "FAIL", "anomalies": 2, "evidence": "out_of_order: ..."}
    assert pending(unknown)["verdict"] == "PENDING" and "when the run ends" in pending(unknown)["evidence"]
    assert pending(failed) == failed


def test_secrets_come_from_the_environment_at_run_time_not_as_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKETPROOF_JWT_SECRET", "from-env")
    monkeypatch.setenv("SOCKETPROOF_ADMIN_TOKEN", "admin-from-env")
    parsed = types.SimpleNamespace(jwt_secret="", admin_token="")
    StartupSecrets.capture(parsed, os.environ).apply(parsed, embedded=False)
    assert (parsed.jwt_secret, parsed.admin_token) == ("from-env", "admin-from-env")
    given = types.SimpleNamespace(jwt_secret="given", admin_token="t")
    StartupSecrets.capture(given, os.environ).apply(given, embedded=False)
    assert (given.jwt_secret, given.admin_token) == ("given", "t")
    monkeypatch.delenv("SOCKETPROOF_JWT_SECRET")
    nothing = types.SimpleNamespace(jwt_secret="", admin_token="")
    StartupSecrets.capture(nothing, os.environ).apply(nothing, embedded=False)
    assert nothing.jwt_secret == default_secret() == DEFAULT_SECRET and LoadOptions().jwt_secret == ""
