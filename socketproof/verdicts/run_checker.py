"""Judging a Locust run: histories in, verdicts out, in one process or across workers.

Per process (local runner or worker): at `test_stopping` users stop sending, in-flight
messages get `--drain` seconds to land, and the recorder is finished; at `test_stop` a
worker sends its history to the master. The local runner or the master then reads the
server's /stats (for the cleanup check), runs the checks, writes the reports and sets
the exit code; the verdict table is printed when Locust quits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.runners import MasterRunner, WorkerRunner

from client.tokens import mint_admin_token
from client.urls import http_base
from history import History
from socketproof.target import http_get
from socketproof.verdicts import reports, server_count
from socketproof.verdicts.judge import Judgement, format_table, judge, stats_table

log = logging.getLogger("socketproof")

HISTORY_MESSAGE = "socketproof_history"
STOP_MESSAGE = "socketproof_stop"
LIVE_HISTORY_KEY = "socketproof_live_history"
LIVE_REPORT_EVERY = 5.0
WORKER_HISTORY_WAIT = 15.0
CLEANUP_WAIT = 5.0
STATS_BEFORE_TIMEOUT = 2.0


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    names: tuple[str, ...]
    thresholds: tuple[str, ...]
    report_dir: str
    strict: bool
    admin_token: str | None
    drain: float
    jwt_secret: str
    server_connections: str | None = None
    """--server-connections URL#name: the count the cleanup check compares (socketproof.verdicts.server_count)."""
    server_stats: bool = True
    """The adapter's server has the reference server's /stats (SERVER_STATS)."""
    heartbeat_interval: float | None = None
    """--heartbeat-interval: the server's ping interval to expect when its protocol announces none."""
    ssl_context: Any = None
    """The run's TLS trust and client certificate for https:// reads (socketproof/target/tls.py)."""
    admin_minter: Any = None
    """Mints the /stats admin token when the run mints with a private key (socketproof/target/token_source.py)."""
    warnings: tuple[str, ...] = ()
    """Said in checks.json's meta (e.g. --insecure: certificates were not verified)."""


def connections_by_process(history: History) -> dict[str, int]:
    """How many connections each Locust process recorded: shows every worker's part arrived."""
    counts: dict[str, int] = {}
    for connection in history.connections:
        counts[connection.process] = counts.get(connection.process, 0) + 1
    for process, folded in history.folded.by_process.items():  # closed connections the recorder folded
        counts[process] = counts.get(process, 0) + folded
    return dict(sorted(counts.items()))


PENDING = "PENDING"
"""A live verdict with no anomaly yet: PASS needs the whole history, so it waits for the end."""


def pending(row: dict[str, Any]) -> dict[str, Any]:
    """A provisional row: an anomaly is a FAIL at once; no anomaly is PENDING until the run ends."""
    if row["verdict"] != "UNKNOWN":
        return row
    return {**row, "verdict": PENDING, "evidence": "no anomaly so far; the verdict comes when the run ends"}


class RunChecker:
    """The checks side of one Locust process."""

    def __init__(self, environment: Any, options: CheckOptions,
                 current_state: Callable[[], Any] = lambda: None) -> None:
        self.environment = environment
        self.options = options
        self.current_state = current_state
        """This process's run state if a run made one (the users' history), else None."""
        self.judgement: Judgement | None = None
        self.report_paths: list[str] = []
        self.stats_before: dict[str, Any] | None = None
        self.count_before: int | None = None
        self.worker_histories: dict[str, History] = {}
        self.participants: set[str] = set()
        """Master: every worker that took part in this run (its history is owed)."""
        self.missing_workers: list[str] = []
        """Master: the workers whose history never came, by name."""
        self.live_histories: dict[str, History] = {}
        self.disruptions: list[dict[str, Any]] = []
        """The run's --disrupt records (socketproof.run.disruptions), handed over at test_stop."""
        self.failures_during_disruptions = 0
        """Failed requests a disruption explains (during it or in the reconnect storm after it)."""
        self.clock_offsets: dict[str, Any] | None = None
        """Master: the workers' measured clock offsets (socketproof.run.clock_sync), handed over at test_stop."""
        self._last_live_report = 0.0
        self._judged_run = False
        self._running = False  # between test_start and test_stop: Locust also fires stop events at quit
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            runner.register_message(HISTORY_MESSAGE, self._on_worker_history)
            environment.events.worker_report.add_listener(self._on_worker_report)
        elif isinstance(runner, WorkerRunner):
            runner.register_message(STOP_MESSAGE, self._on_stop_request)
            environment.events.report_to_master.add_listener(self._on_report_to_master)

    @property
    def runner(self) -> Any:
        return self.environment.runner

    # -- server /stats --------------------------------------------------------

    def admin_token(self) -> str:
        if self.options.admin_token:
            return self.options.admin_token
        if self.options.admin_minter is not None:
            return str(self.options.admin_minter())
        return mint_admin_token(self.options.jwt_secret, ttl=600)

    def connection_count(self, timeout: float = 5.0) -> int | None:
        """The --server-connections count now; None (with a warning) when it cannot be had."""
        source = self.options.server_connections
        if not source:
            return None
        try:
            return server_count.read_count(source, timeout, context=self.options.ssl_context)
        except server_count.CountError as error:
            log.warning("cannot read the server's connection count for the cleanup check: %s", error)
            return None

    def count_after(self) -> int | None:
        """Wait (bounded) for the count to fall back to where it started, then read it."""
        deadline = time.monotonic() + CLEANUP_WAIT
        while True:
            count = self.connection_count()
            if count is None or self.count_before is None or count <= self.count_before:
                return count
            if time.monotonic() > deadline:
                return count
            gevent.sleep(0.2)

    def server_stats(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """GET /stats on the target within `timeout` s; None when it cannot be had (no admin access,
        not our protocol, no answer)."""
        host = self.environment.host
        if not host or not self.options.server_stats or self.options.server_connections:
            return None
        try:  # http_get: the admin token never follows a redirect (issue 12, finding 6)
            answer = http_get.get(http_base(host) + "/stats", {"Authorization": f"Bearer {self.admin_token()}"},
                                  timeout, self.options.ssl_context)
            if answer.status != 200:
                raise http_get.HttpGetError(f"HTTP {answer.status}")
            stats = json.loads(answer.body)
            if not isinstance(stats, dict):
                raise ValueError("/stats did not answer a JSON object")
            return stats
        except (http_get.HttpGetError, ValueError, RecursionError) as error:  # a hostile body: no count
            log.warning("cannot read %s/stats for the cleanup check: %s", http_base(host), error)
            return None

    def stats_after(self) -> dict[str, Any] | None:
        """Wait (bounded) for the server to drop this run's connections, then read /stats."""
        before = self.stats_before
        deadline = time.monotonic() + CLEANUP_WAIT
        while True:  # each read within what is left of CLEANUP_WAIT: a hung target costs it once
            stats = self.server_stats(min(5.0, max(0.5, deadline - time.monotonic())))
            if stats is None or before is None:
                return stats
            keys = ("connections", "users", "registry_entries")
            settled = all(stats.get(key, 0) <= before.get(key, 0) for key in keys)
            if settled or time.monotonic() > deadline:
                return stats
            gevent.sleep(0.1)

    # -- run life -----------------------------------------------------------

    def on_test_start(self) -> None:
        self._running = True
        self.judgement = None
        self._judged_run = False
        self.worker_histories.clear()
        self.live_histories.clear()
        self.missing_workers = []
        self.participants = {client.id for client in self.runner.clients.all} \
            if isinstance(self.runner, MasterRunner) else set()
        if not isinstance(self.runner, WorkerRunner):
            # Before any user (a baseline), but bounded: in headless runs the run-time clock is
            # already going, so a target whose /stats hangs would otherwise eat 5 s of the run.
            self.stats_before = self.server_stats(STATS_BEFORE_TIMEOUT)
            self.count_before = self.connection_count(STATS_BEFORE_TIMEOUT)

    def on_test_stopping(self, state: Any) -> None:
        """Stop sending, let in-flight messages land, then close the books.

        The master asks its workers to stop now: a headless master's quit() would
        otherwise stop only itself, and stop listening before their histories arrive.
        """
        if not self._running:
            return
        if isinstance(self.runner, MasterRunner):
            self.runner.send_message(STOP_MESSAGE)
            return
        state.stopping = True
        gevent.sleep(self.options.drain)
        state.recorder.finish(complete=True)

    def on_test_stop(self, state: Any) -> None:
        if not self._running:  # quit without a run (e.g. the web UI closed before Start)
            return
        self._running = False
        if isinstance(self.runner, WorkerRunner):
            self.runner.send_message(HISTORY_MESSAGE, state.recorder.history().to_dict())
            return
        if isinstance(self.runner, MasterRunner):
            history = self._wait_for_workers()
        else:
            history = state.recorder.history()
        self.finish(history)

    def _wait_for_workers(self) -> History:
        """Every worker that took part in the run (there at its start, or reporting during it, even
        if Locust has forgotten it since) owes its history; one that never sends it (killed, cut off)
        is named, and the history is incomplete: no check passes on part of the evidence."""
        lost = {client.id for client in self.runner.clients.all if client.state == "missing"}
        expected = self.participants | lost  # a late worker that never ran a user owes nothing
        deadline = time.monotonic() + WORKER_HISTORY_WAIT
        while not expected <= set(self.worker_histories) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        missing = expected - set(self.worker_histories)
        merged = History(complete=not missing and bool(self.worker_histories))
        for history in self.worker_histories.values():
            merged = merged.merge(history)
        if missing:
            self.missing_workers = [self.worker_name(client_id) for client_id in sorted(missing)]
            log.warning("no history from worker %s (killed or cut off?): every check that would rest on part of "
                        "the run is UNKNOWN", ", ".join(self.missing_workers))
            merged.complete = False
        return merged

    def worker_name(self, client_id: str) -> str:
        """`w1 (host_3f2a...)`: the process label its connections carry, and Locust's id."""
        index = getattr(self.runner, "worker_indexes", {}).get(client_id)
        return f"w{index} ({client_id})" if index is not None else client_id

    def finish(self, history: History) -> None:
        """Judge the finished run, write the reports, set the exit code."""
        history.server_stats_before = self.stats_before
        history.disruptions = [dict(d) for d in self.disruptions]
        history.server_stats_after = self.stats_after()
        if self.options.server_connections:
            history.server_connections_source = self.options.server_connections
            history.server_connections_before = self.count_before
            history.server_connections_after = self.count_after()
        options = self.options
        judgement = judge(
            history,
            options.names,
            options.thresholds,
            stats_table(self.runner.stats),
            options.strict,
            options.heartbeat_interval,
            missing_workers=self.missing_workers,
        )
        self.judgement = judgement
        self._judged_run = True
        meta = {
            "host": self.environment.host,
            "checks": list(options.names),
            "thresholds": list(options.thresholds),
            "connections": len(history.connections),
            "connections_by_process": connections_by_process(history),
            "history_complete": history.complete,
            "missing_workers": list(self.missing_workers),
            "disruptions": history.disruptions,
        }
        if history.disruptions:
            meta["failures_during_disruptions"] = self.failures_during_disruptions
        if options.warnings:
            meta["warnings"] = list(options.warnings)
        if self.clock_offsets is not None:
            meta["clock_offsets"] = self.clock_offsets
        try:
            self.report_paths = [str(path) for path in reports.write_reports(options.report_dir, judgement, meta)]
        except OSError as error:
            log.error("cannot write check reports to %s: %s", options.report_dir, error)
            self.report_paths = []
        if judgement.failed:
            self.environment.process_exit_code = 1
        elif self.disruptions_explain_failures():  # failed requests are the drill's expected cost
            self.environment.process_exit_code = 0
        if not (self.environment.parsed_options and self.environment.parsed_options.headless):
            self.print_summary()

    def disruptions_explain_failures(self) -> bool:
        """Every failed request of the run happened during a --disrupt or the reconnect storm after it
        (the recovery check judges those); local runner only: a master sees no request's time."""
        failures = self.runner.stats.total.num_failures
        return bool(self.disruptions) and 0 < failures <= self.failures_during_disruptions

    def on_quitting(self) -> None:
        """Ctrl-C or SIGTERM before the run ended: stop it properly so it is still judged."""
        if isinstance(self.runner, WorkerRunner) or self._judged_run:
            return
        if self.runner.state not in ("stopped", "init", "ready"):
            self.runner.stop()

    # -- output -------------------------------------------------------------

    def on_quit(self, exit_code: int) -> None:
        parsed = self.environment.parsed_options
        html_file = getattr(parsed, "html_file", None)
        if html_file and self.judgement is not None:
            try:
                with open(html_file, encoding="utf-8") as handle:
                    page = handle.read()
                with open(html_file, "w", encoding="utf-8") as handle:
                    handle.write(self.html_page(page))
            except OSError as error:
                log.error("cannot add the verdicts to %s: %s", html_file, error)
        if parsed is not None and parsed.headless:
            self.print_summary(exit_code)

    def print_summary(self, exit_code: int | None = None) -> None:
        judgement = self.judgement
        if judgement is None:
            return
        lines = ["", "Socketproof checks", format_table(judgement)]
        if self.clock_offsets is not None:
            lines.append(str(self.clock_offsets.get("note", "")))
        html_file = getattr(self.environment.parsed_options, "html_file", None)
        paths = [*self.report_paths, *([html_file] if html_file and exit_code is not None else [])]
        if paths:
            lines.append("Reports: " + ", ".join(paths))
        if exit_code is not None:
            lines.append(f"Exit code {exit_code}: {self.exit_meaning(exit_code)}")
            legend = "0 = pass; 1 = a check or request failed; 2 = bad options, unusable target, internal error"
            lines.append(f"  ({legend})")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def exit_meaning(self, exit_code: int) -> str:
        """Why this run exits with this code, in words."""
        judgement = self.judgement
        failures = self.runner.stats.total.num_failures
        if exit_code == 0 and self.disruptions_explain_failures():
            return (f"no check failed; the {self.runner.stats.total.num_failures:,} failed requests all came during "
                    "the --disrupt disruptions or the reconnect storm after them (judged by recovery).")
        if exit_code == 0:
            unknown = [v.name for v in judgement.verdicts if v.valid not in (True, False)] if judgement else []
            if unknown:
                return (f"no check or request failed; {', '.join(unknown)} UNKNOWN "
                        "(not enough evidence: run longer; --strict fails on it).")
            return "every check passed and no request failed."
        if exit_code == 2:
            return "an internal error (see the log above)."
        reasons = []
        if judgement is not None and judgement.no_evidence:  # one line: everything else follows from it
            return ("not one request succeeded, so the run gave no evidence at all (is the target answering? "
                    "see the pre-flight line above).")
        if judgement is not None:
            failed = [verdict.name for verdict in judgement.verdicts if verdict.valid is False]
            if failed:
                reasons.append(f"{', '.join(failed)} failed")
            elif judgement.failed:
                reasons.append("--strict and a check is UNKNOWN")
        if failures:
            reasons.append(f"{failures:,} requests failed (see the tables above)")
        return ("; ".join(reasons) or "the run failed (see the log above)") + "."

    def html_page(self, page: str) -> str:
        return reports.add_to_html(page, self.judgement) if self.judgement else page

    def live_rows(self, state: Any) -> list[dict[str, Any]]:
        """Verdicts for the web UI's Checks tab: final ones, or provisional ones while running."""
        from socketproof.verdicts.judge import rows

        if self.judgement is not None:
            return rows(self.judgement)
        if isinstance(self.runner, MasterRunner):
            history = History(complete=False)
            for live in self.live_histories.values():
                history = history.merge(live)
        else:
            history = state.recorder.history()
            history.complete = False
        history.server_stats_before = self.stats_before
        provisional = judge(history, self.options.names, self.options.thresholds, stats_table(self.runner.stats),
                            heartbeat_interval=self.options.heartbeat_interval)
        return [pending(row) for row in rows(provisional)]

    # -- distributed ----------------------------------------------------------

    def _on_stop_request(self, environment: Any, msg: Any, **_: Any) -> None:
        self.runner.stop()

    def _on_worker_history(self, environment: Any, msg: Any, **_: Any) -> None:
        self.worker_histories[msg.node_id] = History.from_dict(msg.data)

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        now = time.monotonic()
        state = self.current_state()
        if state is None or now - self._last_live_report < LIVE_REPORT_EVERY:
            return
        self._last_live_report = now
        data[LIVE_HISTORY_KEY] = state.recorder.history().to_dict()

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if self._running and data.get("user_count"):  # it ran users in this run, even if it joined late
            self.participants.add(client_id)
        live = data.get(LIVE_HISTORY_KEY)
        if live is not None:
            self.live_histories[client_id] = History.from_dict(live)
