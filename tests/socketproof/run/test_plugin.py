"""socketproof.run.plugin: flows left out for a missing capability, the checks options, the pre-flight
as the plugin runs it (headless: exit 2 with one line; web UI: a warning). Real Locust
Environments and the real user classes of locustfiles/; real sockets for the pre-flight."""

from __future__ import annotations

import logging

import locust  # noqa: F401 - first: gevent monkey-patches before the client imports ssl
import pytest
from locust import User, task
from locust.env import Environment

from apps.json_chat_server import chat_server
from client.adapter import VERSIONED_STATE
from locustfiles.chat import ChatUser
from locustfiles.idle import IdleUser
from locustfiles.multitab import MultiTabUser
from locustfiles.offline import OfflineUser
from locustfiles.state_sync import StateSyncUser
from socketproof.run import plugin
from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import LoadOptions, load_options
from socketproof.verdicts.judge import CHECK_NAMES
from tests.socketproof.run.test_options import parse
from tests.socketproof.test_custom_adapter_runs import ADAPTER as JSON_CHAT
from tests.socketproof.verdicts.test_server_count import free_port

FLOWS: list[type[User]] = [ChatUser, IdleUser, MultiTabUser, OfflineUser, StateSyncUser]


def adapter(protocol: str = "socketproof"):  # noqa: ANN201 - an Adapter
    options = LoadOptions(protocol=protocol)
    return build_run_adapter(None, options)


def left_out_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "socketproof" and "left out" in r.getMessage()]


# -- leave_out_flows ----------------------------------------------------------------


def test_flows_needing_what_the_adapter_lacks_are_left_out_with_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = Environment(user_classes=list(FLOWS))
    classes = env.user_classes
    with caplog.at_level(logging.INFO, logger="socketproof"):
        plugin.leave_out_flows(env, adapter(JSON_CHAT))
    assert env.user_classes is classes, "the runner's own list is changed, not replaced"
    assert env.user_classes == [ChatUser, IdleUser]
    assert set(env.user_classes_by_name) == {"ChatUser", "IdleUser"}
    assert left_out_lines(caplog) == [
        "flow MultiTabUser left out: the json-chat adapter has no server_seq",
        "flow OfflineUser left out: the json-chat adapter has no resume",
        "flow StateSyncUser left out: the json-chat adapter has no versioned_state",
    ]


def test_an_adapter_with_every_capability_keeps_every_flow(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment(user_classes=list(FLOWS))
    with caplog.at_level(logging.INFO, logger="socketproof"):
        plugin.leave_out_flows(env, adapter())
    assert env.user_classes == FLOWS and left_out_lines(caplog) == []


def test_a_worker_leaves_them_out_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """The master says it once; each worker saying it again would repeat the line per worker."""
    env = Environment(user_classes=list(FLOWS))
    with caplog.at_level(logging.INFO, logger="socketproof"):
        plugin.leave_out_flows(env, adapter(JSON_CHAT), quiet=True)
    assert env.user_classes == [ChatUser, IdleUser] and left_out_lines(caplog) == []


def test_nothing_left_to_run_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    class Versioned(User):
        needs = frozenset({VERSIONED_STATE})

        @task
        def nothing(self) -> None:
            pass

    env = Environment(user_classes=[Versioned, StateSyncUser])
    with pytest.raises(SystemExit) as caught:
        plugin.leave_out_flows(env, adapter(JSON_CHAT), quiet=True)
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "locust: error: every flow needs something the json-chat adapter lacks: nothing to run\n")


def test_a_plain_locust_user_without_needs_always_runs() -> None:
    class Plain(User):
        @task
        def nothing(self) -> None:
            pass

    env = Environment(user_classes=[Plain, StateSyncUser])
    plugin.leave_out_flows(env, adapter(JSON_CHAT), quiet=True)
    assert env.user_classes == [Plain]


# -- check_options ------------------------------------------------------------------


def test_check_options_follow_the_command_line_and_the_adapter() -> None:
    source = "http://127.0.0.1:9100/metrics#ws_connections"
    parsed = parse("--checks", "loss, ordering", "--threshold", "echo:p95<50", "--strict", "--drain", "0.5",
                   "--server-connections", source, "--checks-report", "out")
    load = load_options(parsed)
    options = plugin.check_options(parsed, load, frozenset(adapter(JSON_CHAT).capabilities))
    assert (options.names, options.thresholds, options.strict, options.drain) == (
        ("loss", "ordering"), ("echo:p95<50",), True, 0.5)
    assert (options.server_connections, options.server_stats, options.report_dir) == (source, False, "out")
    defaults = plugin.check_options(parse(), load_options(parse()), frozenset(adapter().capabilities))
    assert defaults.names == CHECK_NAMES and defaults.server_stats is True and defaults.server_connections is None
    assert defaults.admin_token is None and defaults.report_dir == "reports"


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--checks", "loss,nope"], "unknown check 'nope' in --checks"), (["--threshold", "echo:p95<<"], "echo:p95<<")],
)
def test_bad_checks_options_raise_naming_them(argv: list[str], message: str) -> None:
    parsed = parse(*argv)
    with pytest.raises(ValueError, match=message):
        plugin.check_options(parsed, load_options(parsed))


# -- the pre-flight as the plugin runs it -------------------------------------------


def environment(host: str, *argv: str, headless: bool = True) -> Environment:
    parsed = parse(*argv)
    parsed.headless = headless
    return Environment(host=host, parsed_options=parsed)


def test_headless_a_target_no_run_can_use_is_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    env = environment(f"ws://127.0.0.1:{free_port()}")
    with pytest.raises(SystemExit) as caught:
        plugin._preflight(env, load_options(env.parsed_options))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("locust: error: cannot reach ws://127.0.0.1:"), err
    assert "connection refused; is the server running? (check --host)" in err


def test_in_the_web_ui_the_same_target_is_a_warning(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    env = environment(f"ws://127.0.0.1:{free_port()}", headless=False)
    with caplog.at_level(logging.WARNING, logger="socketproof"):
        plugin._preflight(env, load_options(env.parsed_options))
    assert capsys.readouterr().err == ""
    warnings = [r.getMessage() for r in caplog.records if r.name == "socketproof"]
    assert len(warnings) == 1 and warnings[0].startswith("pre-flight: cannot reach"), warnings


def test_the_preflight_goes_through_the_runs_adapter(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with chat_server() as url:
        env = environment(url, "--protocol", JSON_CHAT)
        with caplog.at_level(logging.WARNING, logger="socketproof"):
            plugin._preflight(env, load_options(env.parsed_options))
    assert capsys.readouterr().err == "" and [r for r in caplog.records if r.name == "socketproof"] == []


def test_no_host_means_no_preflight(capsys: pytest.CaptureFixture[str]) -> None:
    env = environment("")
    plugin._preflight(env, load_options(env.parsed_options))  # the embedded server is started elsewhere
    assert capsys.readouterr().err == ""
