"""Wires Socketproof into Locust's events: options, validation, the target, the run, the checks.

Importing this module (every locustfile does, through socketproof.run.users) registers the
listeners once; Python's import cache keeps it from happening twice. What a process keeps
lives in one RunContext (socketproof.run.context).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from client.adapter import SERVER_STATS
from socketproof.capacity.shape import install as install_capacity
from socketproof.capacity.shape import options_from as capacity_options
from socketproof.proxy.locust_run import start_for_run as start_proxy_for_run
from socketproof.proxy.locust_run import target_behind
from socketproof.run import clock_sync, disruptions, latency_windows, progress, start_guard, webui
from socketproof.run.arguments import add_arguments, build_run_adapter
from socketproof.run.context import RunContext
from socketproof.run.options import LoadOptions, OptionError, drain_seconds, load_options, number_option
from socketproof.run.secret_options import StartupSecrets, install_log_filter
from socketproof.run.usage import usage_error
from socketproof.target import embedded, loopback, preflight
from socketproof.target.deployment import DeploymentError, with_checks
from socketproof.verdicts.judge import parse_check_names, validate_thresholds
from socketproof.verdicts.run_checker import CheckOptions, RunChecker

log = logging.getLogger("socketproof")

# PyJWT warns about a short HMAC key on every run; the secret is the server's choice, not
# something a load test can fix, so the warning is noise at the top of every run.
warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")


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


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    context = RunContext.of(environment)
    worker = isinstance(environment.runner, WorkerRunner)
    install_log_filter(context.secret_values)
    if not worker:  # workers get the master's secrets with its options
        context.startup = StartupSecrets.capture(environment.parsed_options, os.environ, embedded=not environment.host)
        context.startup.apply(environment.parsed_options, embedded=not environment.host)
    try:
        load = load_options(environment.parsed_options)
        adapter = build_run_adapter(environment.parsed_options, load)
        checks = check_options(environment.parsed_options, load, frozenset(adapter.capabilities))
        if not worker:  # TLS, handshake extras, the token source: a bad one is exit 2 before any user
            checks = with_checks(checks, context.prepare_deployment())
        capacity = None if worker else capacity_options(environment.parsed_options, checks)
        if not worker:
            context.disrupt = disruptions.parse_disruptions(
                getattr(environment.parsed_options, "disrupt", None), embedded=not environment.host,
                proxy=bool(str(getattr(environment.parsed_options, "proxy_faults", "") or "").strip()))
    except ValueError as error:
        usage_error(str(error))
    leave_out_flows(environment, adapter, quiet=worker)
    context.checker = RunChecker(environment, checks, context.current_state)
    _current["checker"] = context.checker
    if not worker:
        _start_target(environment, context, load, adapter.name)
        if capacity is not None:
            install_capacity(environment, context.checker, capacity)
    if context.disrupt:  # failed requests that a disruption explains: the local runner's, or the workers' reports
        environment.events.request.add_listener(
            lambda **kw: context.schedule.on_request(**kw) if context.schedule is not None else None)
        environment.events.worker_report.add_listener(
            lambda client_id, data: context.schedule.on_worker_report(data) if context.schedule is not None else None)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(loopback.REFUSED_MESSAGE, _worker_refused(environment))
    clock_sync.install(environment)  # distributed: each worker's clock offset, for cross-process deliver
    if environment.web_ui is not None:
        webui.extend(environment)


def _start_target(environment: Any, context: RunContext, load: LoadOptions, adapter_name: str) -> None:
    """The master's or local runner's target: the embedded server with no --host, the fault
    proxy with --proxy-faults; who may use the start-up credentials; the pre-flight."""
    foreign = not environment.host and adapter_name != "socketproof"
    if foreign:  # the embedded reference server speaks only the socketproof protocol
        message = f"--protocol {load.protocol} needs --host: the embedded reference server speaks only " \
                  "the socketproof protocol"
        if environment.parsed_options is not None and environment.parsed_options.headless:
            usage_error(message)
        log.warning("%s (give the host in the start form)", message)
    try:
        if not foreign:
            embedded.start_if_no_host(environment, load.jwt_secret)
        context.proxy = start_proxy_for_run(environment)  # --proxy-faults: the fault proxy in front of the target
    except RuntimeError as error:
        usage_error(f"could not start the embedded reference server: {error}")
    except ValueError as error:
        usage_error(f"--proxy-faults: {error}")
    if embedded.host():
        context.startup.embedded_hosts = (str(embedded.host()), str(environment.host))
    if embedded.host() or context.proxy is not None:  # a target on this machine's loopback
        loopback.stamp(environment.parsed_options)
    hosts = {str(environment.host or ""), *context.startup.embedded_hosts,
             target_behind(context.proxy, environment.host)}
    try:
        context.start_target = start_guard.startup_target(hosts, environment.parsed_options, context.startup.given,
                                                          context.deployment())
    except DeploymentError:
        pass  # said at init already (exit 2 headless)
    _preflight(environment, load)


def _worker_refused(environment: Any) -> Any:
    """A worker cannot reach the run's host (socketproof.target.loopback): say so, end the run, exit 2."""

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


def _apply_secrets(environment: Any, context: RunContext) -> None:
    """Fill the secrets the start form posted empty, for this run's host; the /stats reads use them."""
    parsed = environment.parsed_options
    if parsed is None:
        return
    context.startup.apply(parsed, embedded=environment.host in context.startup.embedded_hosts)
    context.checker.options = dataclasses.replace(
        context.checker.options, jwt_secret=parsed.jwt_secret, admin_token=str(parsed.admin_token or "") or None
    )


def _preflight(environment: Any, load: LoadOptions) -> None:
    """One connection before any user, trying what the mix's flows do on it: headless, a target
    no run can use (or that lacks an operation the flows use) is exit 2; in the web UI (where
    the host can still be changed in the start form) it is a warning in the log."""
    if not environment.host:
        return
    context = RunContext.of(environment)
    try:
        adapter = build_run_adapter(environment.parsed_options, load)
        deploy = context.deployment()
    except (OptionError, DeploymentError) as error:
        log.error("%s", error)
        return
    run_time = getattr(environment.parsed_options, "run_time", None) if environment.parsed_options else None
    target = target_behind(context.proxy, environment.host)  # the pre-flight asks the server behind a proxy
    finding = preflight.check(target, load, run_time=run_time, adapter=adapter, deployment=deploy,
                              uses=preflight.operations_used(environment.user_classes))
    if finding is None:
        return
    headless = bool(environment.parsed_options and environment.parsed_options.headless)
    if finding.fatal and headless:
        usage_error(finding.message)
    log.warning("pre-flight: %s", finding.message)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """A new run (also after a stop in the web UI): fresh options, history and baseline."""
    context = RunContext.of(environment)
    if not _initialised(context):
        log.error("test_start came before Socketproof's init ended: this process records nothing of this run")
        return
    context.new_run()
    if not isinstance(environment.runner, WorkerRunner):
        if not environment.host and embedded.host():  # the web UI's host field was emptied
            environment.host = embedded.host()
            log.info("no host in the start form: using the embedded reference server at %s", environment.host)
        _apply_secrets(environment, context)  # before the master sends its options to workers
        try:  # the start form may have changed --origin, a token option
            context.checker.options = with_checks(context.checker.options, context.prepare_deployment())
        except DeploymentError as error:
            log.error("%s", error)
        if environment.web_ui is not None:  # the start form may have changed the host or the secret
            try:
                _preflight(environment, load_options(environment.parsed_options))
            except OptionError as error:
                log.error("%s", error)
        context.schedule = _schedule(context)
        context.progress = progress.start(environment, lambda: context.schedule.last_status if context.schedule else "")
    else:
        refused = loopback.refusal(environment.parsed_options, environment.host)
        if refused is not None:  # a remote worker given the master's 127.0.0.1: no user of it may connect
            log.error("%s", refused)
            environment.runner.send_message(loopback.REFUSED_MESSAGE, refused)
            gevent.spawn(environment.runner.quit)
            return
    if not isinstance(environment.runner, MasterRunner):
        context.state()
    context.checker.on_test_start()
    clock_sync.start(environment)


def _initialised(context: RunContext, wait: float = 10.0) -> bool:
    """A worker that joins a running master gets its spawn message while Locust still builds its
    runner, before the init event: wait (bounded) for init to end, which happens in the main greenlet."""
    deadline = time.monotonic() + wait
    while context.checker is None and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return context.checker is not None


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    context = RunContext.of(environment)
    if context.progress is not None:
        context.progress.kill(block=False)
    context.checker.on_test_stopping(_users_state(environment, context))


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    context = RunContext.of(environment)
    if context.schedule is not None:  # before the checker judges: the records go into the history
        context.checker.disruptions = context.schedule.cancel()
        context.checker.failures_during_disruptions = context.schedule.failures_during
        context.schedule = None
    offsets = clock_sync.stop(environment)
    if offsets is not None:  # the master: what the workers' clocks measured, into checks.json
        context.checker.clock_offsets = offsets
    context.checker.on_test_stop(_users_state(environment, context))


def _schedule(context: RunContext) -> disruptions.Schedule | None:
    """test_start: the run's --disrupt on timers from now (None without any)."""
    context.checker.disruptions = []
    context.checker.failures_during_disruptions = 0
    if not context.disrupt:
        return None
    proxy = context.proxy.process if context.proxy is not None else None
    targets = disruptions.Targets(restart=embedded.restart, proxy=proxy,
                                  latency=latency_windows.locust_probe(context.environment))
    schedule = disruptions.Schedule(context.disrupt, targets)
    schedule.start()
    return schedule


def _users_state(environment: Any, context: RunContext) -> Any:
    return None if isinstance(environment.runner, MasterRunner) else context.state()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    checker = RunContext.of(environment).checker
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
