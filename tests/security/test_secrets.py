"""Secrets never leave the run (issue 12, finding 1): a real Locust web UI and a real headless
run against a real reference server whose secret and admin token are given by the command
line, SOCKETPROOF_* variables, a locust.conf, or typed into the start form.

The server checks an audience, so tokens minted from the secret alone (which carry none) cannot
read /stats: a cleanup PASS proves the given admin token was used, and connects that succeed
prove the given secret was; neither value may appear in the page, an answer, a log or a report.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from locust.argument_parser import LocustArgumentParser  # at import: gevent patches before any thread

from socketproof.run.arguments import add_arguments
from socketproof.run.options import SECRET_OPTIONS
from socketproof.run.secret_options import REDACTED, StartupSecrets, hide_in_form, redact
from tests.socketproof.support import run_locust
from tests.support.server import ServerHandle, running_server
from tests.user.support import get_json, post_form, wait_until, web_ui

AUDIENCE = "socketproof-secrets-test"
ANSWERS = ("/", "/stats/requests", "/stats/report", "/stats/requests/csv", "/stats/failures/csv", "/exceptions")


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[ServerHandle, str, str]]:
    secret = "jwt-" + secrets.token_hex(16)
    with running_server(jwt_secret=secret, jwt_audience=AUDIENCE) as handle:
        yield handle, secret, handle.admin_token()


def text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", "replace")


def template_args(page: str) -> dict[str, Any]:
    """`window.templateArgs = {...}` of the UI's page: what the start form is built from."""
    return json.loads(page.split("templateArgs = ", 1)[1].split("\n", 1)[0].strip().rstrip(";"))


def checks_rows(base: str) -> list[dict[str, Any]]:
    extended = get_json(base + "/stats/requests").get("extended_stats") or []
    return extended[0]["data"] if extended else []


def run_in_web_ui(
    base: str, host: str, form_secrets: dict[str, str]
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Read the start page, start a short run as the form does, stop it; every answer's text and
    the final verdict rows."""
    page = text(base + "/")
    # What a browser posts: every custom field with the value the page filled in, unless typed over.
    options = template_args(page)["extra_options"]
    form = {name: option["default_value"] for name, option in options.items() if not option["is_multiple"]}
    form.update({"user_count": 4, "spawn_rate": 4, "host": host, "jwt_audience": AUDIENCE, **form_secrets})
    started = post_form(base + "/swarm", form)
    assert started["success"], started
    wait_until(
        lambda: any(s["name"] == "connect" and s["num_requests"] >= 4
                    for s in get_json(base + "/stats/requests")["stats"]),
        60, "connects in /stats/requests",
    )
    post_form(base + "/stop", {})
    final = wait_until(
        lambda: (rows := checks_rows(base)) and all(r["verdict"] in ("PASS", "FAIL", "UNKNOWN") for r in rows) and rows,
        60, "final verdicts",
    )
    answers = {"page": page, **{path: text(base + path) for path in ANSWERS}}
    return answers, {row["check"]: row for row in final}


def assert_used_and_hidden(
    answers: dict[str, str], rows: dict[str, dict[str, Any]], log: str, secret: str, token: str
) -> None:
    stats = {s["name"]: s for s in json.loads(answers["/stats/requests"])["stats"]}
    assert stats["connect"]["num_requests"] >= 4 and stats["connect"]["num_failures"] == 0, stats["connect"]
    assert rows["cleanup"]["verdict"] == "PASS", rows["cleanup"]  # /stats read with the given admin token
    for name, body in {**answers, "log": log}.items():
        assert secret not in body, f"the JWT secret is in {name}"
        assert token not in body, f"the admin token is in {name}"


@pytest.mark.parametrize("path", ["command line", "environment", "locust.conf", "start form"])
def test_the_web_ui_never_shows_a_secret_however_it_came(
    path: str, target: tuple[ServerHandle, str, str], tmp_path: Path
) -> None:
    server, secret, token = target
    args = ["--host", server.ws_url.rsplit("/ws", 1)[0], "--jwt-audience", AUDIENCE]
    env: dict[str, str] = {}
    form: dict[str, str] = {}
    if path == "command line":
        args += ["--jwt-secret", secret, "--admin-token", token]
    elif path == "environment":
        env = {"SOCKETPROOF_JWT_SECRET": secret, "SOCKETPROOF_ADMIN_TOKEN": token}
    elif path == "locust.conf":
        conf = tmp_path / "secret.conf"
        conf.write_text(f"jwt-secret = {secret}\nadmin-token = {token}\n")
        args += ["--config", str(conf)]
    else:
        form = {"jwt_secret": secret, "admin_token": token}
    log = tmp_path / "locust.log"
    with web_ui(args, log, env) as base:
        answers, rows = run_in_web_ui(base, server.ws_url.rsplit("/ws", 1)[0], form)
    assert_used_and_hidden(answers, rows, log.read_text(), secret, token)


def test_a_headless_runs_reports_and_output_carry_no_secret(
    target: tuple[ServerHandle, str, str], tmp_path: Path
) -> None:
    server, secret, token = target
    html = tmp_path / "reports" / "locust.html"
    run = run_locust(
        ["--host", server.ws_url.rsplit("/ws", 1)[0], "--jwt-audience", AUDIENCE, "--jwt-secret", secret,
         "--admin-token", token, "--users", "4", "--spawn-rate", "4", "--run-time", "5s",
         "--html", str(html), "--loglevel", "DEBUG"],
        tmp_path / "reports",
    )
    assert run.returncode == 0, run.describe()
    assert run.verdicts["cleanup"]["valid"] is True, run.verdicts["cleanup"]
    files = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert {"checks.json", "checks-junit.xml", "locust.html", "stats.json"} <= {p.name for p in files}
    for where, body in [("stdout", run.stdout), ("stderr", run.stderr)] + [(p.name, p.read_text()) for p in files]:
        assert secret not in body and token not in body, f"a secret is in {where}"


# -- the pure parts ---------------------------------------------------------------------------


def test_every_option_marked_secret_is_declared_and_the_other_way_round() -> None:
    parser = LocustArgumentParser()
    add_arguments(parser)
    assert set(parser.secret_args_included_in_web_ui) == set(SECRET_OPTIONS)


def test_the_form_shows_secret_defaults_empty_and_leaves_others() -> None:
    args = {"extra_options": {"jwt_secret": {"default_value": "s3cret"}, "admin_token": {"default_value": "t0ken"},
                              "ws_path": {"default_value": "/ws"}}}
    hide_in_form(args)
    assert [o["default_value"] for o in args["extra_options"].values()] == ["", "", "/ws"]


def test_startup_secrets_fill_what_the_form_posts_empty() -> None:
    import types

    given = types.SimpleNamespace(jwt_secret="from-cli", admin_token="")
    startup = StartupSecrets.capture(given, {"SOCKETPROOF_ADMIN_TOKEN": "from-env"}, embedded=True)
    assert startup.generated_jwt_secret is None  # a secret was given: none is generated
    posted = types.SimpleNamespace(jwt_secret="", admin_token="")
    startup.apply(posted, embedded=False)
    assert (posted.jwt_secret, posted.admin_token) == ("from-cli", "from-env")
    typed = types.SimpleNamespace(jwt_secret="typed", admin_token="")
    startup.apply(typed, embedded=False)
    assert typed.jwt_secret == "typed"
    assert redact("a from-cli b typed c from-env", startup.values(typed)) == f"a {REDACTED} b {REDACTED} c {REDACTED}"
