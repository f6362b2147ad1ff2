"""socketproof.verdicts.run_checker: RunChecker's before/after readings of the server's connection count,
judged by the real cleanup check, in a real Locust Environment with a LocalRunner.

The count comes from a real HTTP endpoint on 127.0.0.1:0 whose answer the test sets
(`--server-connections URL#metric`), or from the reference server's own /stats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import gevent
import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
import pytest
from locust.env import Environment

from history import ConnectionHistory, History
from socketproof.run import plugin
from socketproof.run.arguments import build_run_adapter
from socketproof.run.context import RunContext
from socketproof.run.options import load_options
from socketproof.verdicts import run_checker
from socketproof.verdicts.run_checker import RunChecker, connections_by_process, http_base
from tests.socketproof.run.test_options import parse
from tests.socketproof.run.test_users import Probe
from tests.socketproof.verdicts.test_server_count import CountEndpoint, count_endpoint
from tests.support.server import running_server


@pytest.fixture
def endpoint() -> Iterator[CountEndpoint]:
    with count_endpoint() as running:
        yield running


def checker_for(host: str, report_dir: Path, *argv: str) -> tuple[Environment, RunChecker]:
    """What the plugin's init builds: options validated, the adapter's capabilities, one checker."""
    parsed = parse("--drain", "0", "--checks-report", str(report_dir), *argv)
    env = Environment(host=host, parsed_options=parsed)
    env.create_local_runner()
    load = load_options(parsed)
    options = plugin.check_options(parsed, load, frozenset(build_run_adapter(parsed, load).capabilities))
    return env, RunChecker(env, options)


def cleanup(checker: RunChecker) -> dict:
    assert checker.judgement is not None
    verdict = next(v for v in checker.judgement.verdicts if v.name == "cleanup")
    return {"valid": verdict.valid, "stats": verdict.stats, "anomalies": verdict.anomalies}


def end_run(env: Environment, checker: RunChecker) -> None:
    state = RunContext.of(env).state()
    checker.on_test_stopping(state)
    checker.on_test_stop(state)


# -- --server-connections -----------------------------------------------------------


def test_a_count_back_at_its_start_passes_cleanup(endpoint: CountEndpoint, tmp_path: Path) -> None:
    source = endpoint.url + "#ws_connections"
    env, checker = checker_for("ws://127.0.0.1:9", tmp_path, "--server-connections", source)
    endpoint.count = 3
    checker.on_test_start()
    assert checker.count_before == 3 and checker.stats_before is None, "no /stats read with a count source"
    endpoint.count = 7  # the run's connections

    def server_closes_them_late() -> None:
        gevent.sleep(0.6)
        endpoint.count = 3

    late = gevent.spawn(server_closes_them_late)
    end_run(env, checker)
    late.join(1)
    verdict = cleanup(checker)
    assert verdict["valid"] is True, verdict
    assert verdict["stats"]["connection_count"] == {"source": source, "before": 3, "after": 3}
    assert endpoint.reads >= 3, "the after reading waited for the count to come back"
    assert env.process_exit_code == 1, "no request at all: no evidence, exit 1 whatever cleanup says"
    written = json.loads((tmp_path / "checks.json").read_text())
    assert next(v for v in written["verdicts"] if v["name"] == "cleanup")["valid"] is True


def test_a_count_that_stays_up_fails_cleanup_as_a_leak(
    endpoint: CountEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_checker, "CLEANUP_WAIT", 0.5)  # the bounded wait for the count to fall
    source = endpoint.url + "#ws_connections"
    env, checker = checker_for("ws://127.0.0.1:9", tmp_path, "--server-connections", source)
    endpoint.count = 3
    checker.on_test_start()
    endpoint.count = 5
    end_run(env, checker)
    verdict = cleanup(checker)
    assert verdict["valid"] is False, verdict
    (leak,) = verdict["anomalies"]
    assert leak.kind == "leak" and leak.evidence["leaked"] == 2 and source in leak.message, leak
    assert env.process_exit_code == 1


def test_a_count_that_cannot_be_read_after_is_unknown_with_the_reason(
    endpoint: CountEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = endpoint.url + "#ws_connections"
    env, checker = checker_for("ws://127.0.0.1:9", tmp_path, "--server-connections", source)
    checker.on_test_start()
    endpoint.status = 503
    with caplog.at_level(logging.WARNING, logger="socketproof"):
        end_run(env, checker)
    verdict = cleanup(checker)
    assert verdict["valid"] not in (True, False), verdict
    assert f"no reading of {source} after the run" in verdict["stats"]["reason"]
    assert any("answered HTTP 503" in r.getMessage() for r in caplog.records)
    assert env.process_exit_code == 1, "no request at all: no evidence, exit 1 whatever cleanup says"


@pytest.mark.parametrize(("body", "why"), [
    (b'{"connections": 1' + b"0" * 400 + b"}", "an integer of about 401 digits"),
    (b'{"connections": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested too deeply"),
])
def test_a_hostile_count_endpoint_after_the_run_is_unknown_with_the_reason(
    endpoint: CountEndpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture, body: bytes, why: str
) -> None:
    """Issue 24, finding 8: a huge integer or deep JSON escaped the count error (OverflowError,
    RecursionError out of the run's end)."""
    source = endpoint.url + "#connections"
    env, checker = checker_for("ws://127.0.0.1:9", tmp_path, "--server-connections", source)
    endpoint.body, endpoint.content_type = b'{"connections": 3}', "application/json"
    checker.on_test_start()
    endpoint.body = body
    with caplog.at_level(logging.WARNING, logger="socketproof"):
        end_run(env, checker)
    verdict = cleanup(checker)
    assert verdict["valid"] not in (True, False), verdict
    assert f"no reading of {source} after the run" in verdict["stats"]["reason"]
    assert any(why in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert (tmp_path / "checks-junit.xml").exists()


# -- the reference server's /stats --------------------------------------------------


def test_stats_before_and_after_judge_cleanup_on_the_reference_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_checker, "CLEANUP_WAIT", 0.5)
    with running_server() as server:
        env, checker = checker_for(server.ws_url, tmp_path / "clean", "--jwt-secret", server.secret)
        checker.on_test_start()
        assert checker.stats_before is not None and checker.stats_before["connections"] == 0
        user = Probe(env)
        user.connection()
        user.on_stop()
        end_run(env, checker)
        assert cleanup(checker)["valid"] is True, cleanup(checker)

        env, checker = checker_for(server.ws_url, tmp_path / "leak", "--jwt-secret", server.secret)
        checker.on_test_start()
        left_open = Probe(env)
        left_open.connection()
        end_run(env, checker)
        verdict = cleanup(checker)
        assert verdict["valid"] is False and {a.kind for a in verdict["anomalies"]} == {"leak"}, verdict
        left_open.on_stop()
        server.wait_stats(connections=0)


def test_an_adapter_without_server_stats_does_not_read_stats(tmp_path: Path) -> None:
    with running_server() as server:
        env, checker = checker_for(server.ws_url, tmp_path, "--protocol",
                                   "docs/examples/json_chat_adapter.py:JsonChatAdapter")
        checker.on_test_start()
        assert checker.stats_before is None and checker.count_before is None
        end_run(env, checker)
    verdict = cleanup(checker)
    assert verdict["valid"] not in (True, False) and "--server-connections" in verdict["stats"]["reason"]


# -- pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("ws://127.0.0.1:8765/ws", "http://127.0.0.1:8765"),
        ("wss://example.com/prefix/ws", "https://example.com"),
        ("http://localhost:80", "http://localhost:80"),
        ("https://h:443/", "https://h:443"),
    ],
)
def test_http_base_is_where_stats_lives(host: str, base: str) -> None:
    assert http_base(host) == base


def test_connections_by_process_counts_kept_and_folded_connections() -> None:
    history = History(connections=[ConnectionHistory("a", "u", process="w1"), ConnectionHistory("b", "u", process="w2"),
                                   ConnectionHistory("c", "u", process="w1")])
    history.folded.by_process = {"w2": 5, "w3": 1}
    assert connections_by_process(history) == {"w1": 2, "w2": 6, "w3": 1}
