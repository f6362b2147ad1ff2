"""Wires Socketproof into Locust: options, validation, the embedded target, the run state, the checks.

Importing this module (every locustfile does, through socketproof.users) registers the
listeners once; Python's import cache keeps it from happening twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import warnings
from typing import Any

import gevent
from flask import jsonify, request
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from client.adapter import SERVER_STATS
from socketproof import deployment, embedded, loopback, preflight, progress, start_guard
from socketproof.capacity.shape import install as install_capacity
from socketproof.capacity.shape import options_from as capacity_options
from socketproof.checking import CheckOptions, RunChecker
from socketproof.judge import parse_check_names, validate_thresholds
from socketproof.options import (
    LoadOptions,
    OptionError,
    add_arguments,
    build_run_adapter,
    drain_seconds,
    load_options,
    number_option,
)
from socketproof.proxy.locust_run import start_for_run as start_proxy_for_run
from socketproof.proxy.locust_run import target_behind as proxy_target
from socketproof.run import RunState
from socketproof.secret_options import StartupSecrets, hide_in_form, install_log_filter, redact

log = logging.getLogger("socketproof")

# PyJWT warns about a short HMAC key on every run; the secret is the server's choice, not
# something a load test can fix, so the warning is noise at the top of every run.
warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")

_CHECKER_KEY = "socketproof_checker"
_PROGRESS_KEY = "socketproof_progress"
_SECRETS_KEY = "socketproof_startup_secrets"
_START_GUARD_KEY = "socketproof_start_guard"
CHECKS_TAB = "socketproof-checks"


def run_state(environment: Any) -> RunState:
    """The process's RunState (socketproof.run owns it; kept here for older callers)."""
    return RunState.of(environment)


def check_options(parsed: Any, load: LoadOptions, adapter_capabilities: frozenset[str] = frozenset({SERVER_STATS})
                  ) -> CheckOptions:
    """Validate the checks options (raises ValueError naming the option)."""
    return CheckOptions(
        names=parse_check_names(getattr(parsed, "checks", None)),
        thresholds=tuple(validate_thresholds(getattr(parsed, "threshold", None) or [])),
        report_dir=str(getattr(parsed, "checks_report", None) or "reports"),
        strict=bool(getattr(parsed, "strict", False)),
        admin_token=str(getattr(parsed, "admin_token", "") or "") or None,
        drain=drain_seconds(parsed),
        jwt_secret=load.jwt_secret,
        server_connections=load.server_connections,
        heartbeat_interval=number_option(parsed, "heartbeat_interval", float, 0.0, 3600.0) or None
        if getattr(parsed, "heartbeat_interval", None) is not None else None,
        server_stats=SERVER_STATS in adapter_capabilities,
    )


def usage_error(message: str) -> None:
    """A user's mistake: one line and exit code 2, before any user starts."""
    sys.stderr.write(f"locust: error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    worker = isinstance(environment.runner, WorkerRunner)
    install_log_filter(lambda: secret_values(environment))
    if not worker:  # workers get the master's secrets with its options
        startup = StartupSecrets.capture(environment.parsed_options, os.environ, embedded=not environment.host)
        startup.apply(environment.parsed_options, embedded=not environment.host)
        setattr(environment, _SECRETS_KEY, startup)
    try:
        load = load_options(environment.parsed_options)
        adapter = build_run_adapter(environment.parsed_options, load)
        checks = check_options(environment.parsed_options, load, frozenset(adapter.capabilities))
        if not worker:  # TLS, handshake extras, the token source: a bad one is exit 2 before any user
            checks = deployment.with_checks(checks, deployment.prepare(environment))
        capacity = None if worker else capacity_options(environment.parsed_options, checks)
    except ValueError as error:
        usage_error(str(error))
        return
    leave_out_flows(environment, adapter, quiet=worker)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(loopback.REFUSED_MESSAGE, _worker_refused(environment))
    checker = RunChecker(environment, checks)
    setattr(environment, _CHECKER_KEY, checker)
    _current["checker"] = checker
    if not isinstance(environment.runner, WorkerRunner):
        foreign = not environment.host and adapter.name != "socketproof"
        if foreign:  # the embedded reference server speaks only the socketproof protocol
            message = f"--protocol {load.protocol} needs --host: the embedded reference server speaks only " \
                      "the socketproof protocol"
            if environment.parsed_options is not None and environment.parsed_options.headless:
                usage_error(message)
            log.warning("%s (give the host in the start form)", message)
        try:
            if not foreign:
                embedded.start_if_no_host(environment, load.jwt_secret)
        except RuntimeError as error:
            usage_error(f"could not start the embedded reference server: {error}")
        run_proxy = start_proxy_for_run(environment)  # --proxy-faults: the fault proxy in front of the target
        if embedded.host():
            startup.embedded_hosts = (str(embedded.host()), str(environment.host))
        if embedded.host() or run_proxy is not None:  # a target on this machine's loopback
            loopback.stamp(environment.parsed_options)
        _guard_start(environment, startup)
        _preflight(environment, load)
        if capacity is not None:
            install_capacity(environment, checker, capacity)
    if environment.web_ui is not None:
        _extend_web_ui(environment, checker)


def _guard_start(environment: Any, startup: StartupSecrets) -> None:
    """What the web UI's start form may change: the start-up target's hosts and credentials."""
    hosts = {str(environment.host or ""), *startup.embedded_hosts, proxy_target(environment)}
    try:
        deploy = deployment.Deployment.of(environment)
    except deployment.DeploymentError:
        return  # said at init already (exit 2 headless)
    setattr(environment, _START_GUARD_KEY,
            start_guard.startup_target(hosts, environment.parsed_options, startup.given, deploy))


def _worker_refused(environment: Any) -> Any:
    """A worker cannot reach the run's host (socketproof.loopback): say so, end the run, exit 2."""

    def on_message(msg: Any, **_: Any) -> None:
        log.error("worker %s refused the run: %s", getattr(msg, "node_id", "?"), msg.data)
        environment.process_exit_code = 2
        gevent.spawn(environment.runner.quit)

    return on_message


def leave_out_flows(environment: Any, adapter: Any, *, quiet: bool = False) -> None:
    """Take out of the mix every flow that needs a capability the adapter lacks, with one line each."""
    classes = environment.user_classes
    kept = []
    for cls in classes:
        missing = sorted(set(getattr(cls, "needs", ())) - set(adapter.capabilities))
        if missing:
            if not quiet:
                log.info("flow %s left out: the %s adapter has no %s", cls.__name__, adapter.name, ", ".join(missing))
            continue
        kept.append(cls)
    if len(kept) == len(classes):
        return
    if not kept:
        usage_error(f"every flow needs something the {adapter.name} adapter lacks: nothing to run")
    classes[:] = kept
    for registry in ("user_classes_by_name", "available_user_classes"):  # the web UI's class picker too
        by_name = getattr(environment, registry, None)
        if isinstance(by_name, dict):
            for name in [n for n, c in by_name.items() if c not in kept]:
                del by_name[name]


def checker_of(environment: Any) -> RunChecker:
    return getattr(environment, _CHECKER_KEY)


def secret_values(environment: Any) -> list[str]:
    """The secret values this process knows of, for redaction (socketproof.secret_options)."""
    startup = getattr(environment, _SECRETS_KEY, None) or StartupSecrets({})
    extra = deployment.secret_values(environment)  # credential headers, pre-issued and fetched tokens
    return sorted({*startup.values(environment.parsed_options), *(v for v in extra if len(v) >= 4)}, key=len,
                  reverse=True)


def _apply_secrets(environment: Any) -> None:
    """Fill the secrets the start form posted empty, for this run's host; the /stats reads use them."""
    startup = getattr(environment, _SECRETS_KEY, None)
    parsed = environment.parsed_options
    if startup is None or parsed is None:
        return
    startup.apply(parsed, embedded=environment.host in startup.embedded_hosts)
    checker = checker_of(environment)
    checker.options = dataclasses.replace(
        checker.options, jwt_secret=parsed.jwt_secret, admin_token=str(parsed.admin_token or "") or None
    )


def _prepare_deployment(environment: Any) -> None:
    """A new run (the start form may have changed --origin, a token option): build it again."""
    try:
        checker = checker_of(environment)
        checker.options = deployment.with_checks(checker.options, deployment.prepare(environment))
    except deployment.DeploymentError as error:
        log.error("%s", error)


def _preflight(environment: Any, load: LoadOptions) -> None:
    """One connection before any user: headless, a target no run can use is exit 2; in the web
    UI (where the host can still be changed in the start form) it is a warning in the log."""
    if not environment.host:
        return
    try:
        adapter = build_run_adapter(environment.parsed_options, load)
    except OptionError as error:
        log.error("%s", error)
        return
    run_time = getattr(environment.parsed_options, "run_time", None) if environment.parsed_options else None
    try:
        deploy = deployment.Deployment.of(environment)
    except deployment.DeploymentError as error:
        log.error("%s", error)
        return
    target = proxy_target(environment)  # with --proxy-faults, the server behind the proxy
    finding = preflight.check(target, load, run_time=run_time, adapter=adapter, deployment=deploy)
    if finding is None:
        return
    headless = bool(environment.parsed_options and environment.parsed_options.headless)
    if finding.fatal and headless:
        embedded.stop()
        usage_error(finding.message)
    log.warning("pre-flight: %s", finding.message)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """A new run (also after a stop in the web UI): fresh options, history and baseline."""
    RunState.forget(environment)
    deployment.Deployment.forget(environment)  # built again from this run's options on first use
    if not isinstance(environment.runner, WorkerRunner):
        if not environment.host and embedded.host():  # the web UI's host field was emptied
            environment.host = embedded.host()
            log.info("no host in the start form: using the embedded reference server at %s", environment.host)
        _apply_secrets(environment)  # before the master sends its options to workers
        _prepare_deployment(environment)
        if environment.web_ui is not None:  # the start form may have changed the host or the secret
            try:
                _preflight(environment, load_options(environment.parsed_options))
            except OptionError as error:
                log.error("%s", error)
        setattr(environment, _PROGRESS_KEY, progress.start(environment))
    else:
        refused = loopback.refusal(environment.parsed_options, environment.host)
        if refused is not None:  # a remote worker given the master's 127.0.0.1: no user of it may connect
            log.error("%s", refused)
            environment.runner.send_message(loopback.REFUSED_MESSAGE, refused)
            gevent.spawn(environment.runner.quit)
            return
    if not isinstance(environment.runner, MasterRunner):
        run_state(environment)
    checker_of(environment).on_test_start()


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    printer = getattr(environment, _PROGRESS_KEY, None)
    if printer is not None:
        printer.kill(block=False)
    state = None if isinstance(environment.runner, MasterRunner) else run_state(environment)
    checker_of(environment).on_test_stopping(state)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    state = None if isinstance(environment.runner, MasterRunner) else run_state(environment)
    checker_of(environment).on_test_stop(state)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    checker = getattr(environment, _CHECKER_KEY, None)
    if checker is not None:
        checker.on_quitting()


@events.quit.add_listener
def _on_quit(exit_code: int, **_: Any) -> None:
    """Locust has printed its request table and written --html: add the verdicts to both."""
    checker = _current.get("checker")
    if checker is not None:
        checker.on_quit(exit_code)


_current: dict[str, RunChecker] = {}
"""The process's checker, for the quit event (which carries no environment)."""


def _extend_web_ui(environment: Any, checker: RunChecker) -> None:
    """A "Checks" tab with the verdicts, live while the run goes; verdicts in the HTML report."""
    web_ui = environment.web_ui
    parsed = environment.parsed_options
    if parsed is not None and str(getattr(parsed, "web_host", "") or "") in ("", "*", "0.0.0.0", "::") \
            and not getattr(parsed, "web_login", False):
        log.warning("the web UI listens on every interface with no login: anyone who reaches it can start load "
                    "(with the start-up credentials, on the start-up target only); --web-host 127.0.0.1 keeps it local")
    update_template_args = web_ui.update_template_args

    def _update_template_args_without_secrets() -> None:
        """Locust fills the start form with every option's value: blank the secret ones."""
        update_template_args()
        hide_in_form(web_ui.template_args)

    web_ui.update_template_args = _update_template_args_without_secrets

    @web_ui.app.before_request
    def _guard_swarm() -> Any:
        """Locust's /swarm sets any option it is sent: only the form's fields, and the start-up
        credentials only for the start-up target (socketproof.start_guard)."""
        if request.path != "/swarm" or request.method != "POST":
            return None
        target = getattr(environment, _START_GUARD_KEY, None) or start_guard.StartupTarget(frozenset())
        shown = web_ui.template_args.get("extra_options") or {}
        refused = start_guard.refusal(request.form, shown, target)
        if refused is None:
            return None
        log.error("start refused: %s", refused)
        return jsonify({"success": False, "message": f"Socketproof: {refused}", "host": environment.host})
    hide_in_form(web_ui.template_args)
    web_ui.template_args["extended_tabs"] = [{"title": "Checks", "key": CHECKS_TAB}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": CHECKS_TAB,
            "structure": [
                {"key": "check", "title": "Check"},
                {"key": "verdict", "title": "Verdict"},
                {"key": "anomalies", "title": "Anomalies"},
                {"key": "evidence", "title": "First evidence"},
            ],
        }
    ]

    @web_ui.app.after_request
    def _add_checks(response: Any) -> Any:
        if request.path == "/stats/requests" and response.is_json:
            state = None if isinstance(environment.runner, MasterRunner) else run_state(environment)
            try:
                rows = checker.live_rows(state)
            except Exception:  # noqa: BLE001 - a live view must never break the stats endpoint
                log.exception("live checks failed")
                rows = []
            payload = response.get_json()
            payload["extended_stats"] = [{"key": CHECKS_TAB, "data": rows}]
            response.set_data(json.dumps(payload))
        elif request.path == "/stats/report" and response.mimetype == "text/html":
            response.direct_passthrough = False
            response.set_data(checker.html_page(response.get_data(as_text=True)))
        return _without_secrets(response)

    def _without_secrets(response: Any) -> Any:
        """The last net: no answer of the web UI carries a secret's value, whatever put it there."""
        if response.direct_passthrough or not (response.is_json or response.mimetype in _TEXT_TYPES):
            return response
        body = response.get_data(as_text=True)
        cleaned = redact(body, secret_values(environment))
        if cleaned != body:
            response.set_data(cleaned)
        return response


_TEXT_TYPES = ("text/html", "text/plain", "text/csv")
