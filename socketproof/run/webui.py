"""Socketproof in Locust's web UI: the Checks tab, the start form without secrets, the start guard.

A "Checks" tab shows the verdicts, live while the run goes, and each --disrupt (when it comes,
what it does, what became of it); the HTML report gets the verdicts too. The
start form shows secret options empty (socketproof.run.secret_options), the start endpoint takes
only what the form shows (socketproof.run.start_guard), and no answer carries a secret's value.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import jsonify, request

from socketproof.run import start_guard
from socketproof.run.context import RunContext
from socketproof.run.secret_options import hide_in_form, redact

log = logging.getLogger("socketproof")

CHECKS_TAB = "socketproof-checks"
_TEXT_TYPES = ("text/html", "text/plain", "text/csv")
_EVERY_INTERFACE = ("", "*", "0.0.0.0", "::")
CHECKS_TABLE = [
    {"key": "check", "title": "Check"},
    {"key": "verdict", "title": "Verdict"},
    {"key": "anomalies", "title": "Anomalies"},
    {"key": "evidence", "title": "First evidence"},
]


def extend(environment: Any) -> None:
    """Install the tab, the hidden secrets and the start guard on environment.web_ui."""
    context = RunContext.of(environment)
    web_ui = environment.web_ui
    parsed = environment.parsed_options
    if parsed is not None and str(getattr(parsed, "web_host", "") or "") in _EVERY_INTERFACE \
            and not getattr(parsed, "web_login", False):
        log.warning("the web UI listens on every interface with no login: anyone who reaches it can start load "
                    "(with the start-up credentials, on the start-up target only); --web-host 127.0.0.1 keeps it local")
    update_template_args = web_ui.update_template_args

    def _update_template_args_without_secrets() -> None:
        """Locust fills the start form with every option's value: blank the secret ones."""
        update_template_args()
        hide_in_form(web_ui.template_args)

    web_ui.update_template_args = _update_template_args_without_secrets
    hide_in_form(web_ui.template_args)
    web_ui.template_args["extended_tabs"] = [{"title": "Checks", "key": CHECKS_TAB}]
    web_ui.template_args["extended_tables"] = [{"key": CHECKS_TAB, "structure": CHECKS_TABLE}]

    @web_ui.app.before_request
    def _guard_swarm() -> Any:
        """Locust's /swarm sets any option it is sent: only the form's fields, and the start-up
        credentials only for the start-up target."""
        if request.path != "/swarm" or request.method != "POST":
            return None
        shown = web_ui.template_args.get("extra_options") or {}
        refused = start_guard.refusal(request.form, shown, context.start_target)
        if refused is None:
            return None
        log.error("start refused: %s", refused)
        return jsonify({"success": False, "message": f"Socketproof: {refused}", "host": environment.host})

    @web_ui.app.after_request
    def _add_checks(response: Any) -> Any:
        if request.path == "/stats/requests" and response.is_json:
            try:
                rows = context.checker.live_rows(context.current_state())
            except Exception:  # noqa: BLE001 - a live view must never break the stats endpoint
                log.exception("live checks failed")
                rows = []
            rows += disruption_rows(disruption_records(context))
            payload = response.get_json()
            payload["extended_stats"] = [{"key": CHECKS_TAB, "data": rows}]
            response.set_data(json.dumps(payload))
        elif request.path == "/stats/report" and response.mimetype == "text/html":
            response.direct_passthrough = False
            response.set_data(context.checker.html_page(response.get_data(as_text=True)))
        return _without_secrets(response)

    def _without_secrets(response: Any) -> Any:
        """The last net: no answer of the web UI carries a secret's value, whatever put it there."""
        if response.direct_passthrough or not (response.is_json or response.mimetype in _TEXT_TYPES):
            return response
        body = response.get_data(as_text=True)
        cleaned = redact(body, context.secret_values())
        if cleaned != body:
            response.set_data(cleaned)
        return response


def disruption_records(context: RunContext) -> list[dict[str, Any]]:
    """The --disrupt records to show: this run's live ones, the last run's, or (before any run) the
    parsed ones as scheduled."""
    if context.schedule is not None:
        return context.schedule.records()
    if context.checker is not None and context.checker.disruptions:
        return list(context.checker.disruptions)
    return [{"spec": d.spec, "at": d.at, "action": d.action, "result": "scheduled"} for d in context.disrupt]


def disruption_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Checks-tab row per disruption, after the verdicts: `disrupt 8s:restart`, its result
    (scheduled, pending, running, done, failed, cancelled), when and what it did."""
    rows = []
    for record in records:
        detail = str(record.get("detail") or "")
        evidence = f"at {float(record.get('at') or 0.0):g}s from the start, {record.get('action')}"
        evidence += f": {detail}" if detail else ""
        rows.append({"check": f"disrupt {record.get('spec')}", "verdict": str(record.get("result") or ""),
                     "anomalies": "", "evidence": evidence})
    return rows
