"""The embedded server runs with a random secret of the run, not the public development one
(issue 12, finding 2), and every Locust process gets it: the local runner, the web UI's form
(posted empty), and --processes workers (through the master's options)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import websocket

from client.tokens import mint_token
from server.config import DEFAULT_SECRET
from tests.socketproof.support import run_locust
from tests.user.support import get_json, post_form, wait_until, web_ui


def template_args(page: str) -> dict:
    return json.loads(page.split("templateArgs = ", 1)[1].split("\n", 1)[0].strip().rstrip(";"))


def test_the_web_ui_embedded_server_refuses_the_development_secret_and_the_run_works(tmp_path: Path) -> None:
    log = tmp_path / "locust.log"
    with web_ui([], log) as base:
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            args = template_args(response.read().decode())
        host = args["host"]
        assert host.startswith("ws://127.0.0.1:"), host
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                host + "/ws", header=[f"Authorization: Bearer {mint_token(DEFAULT_SECRET, 'intruder', ttl=60)}"],
                timeout=10,
            )
        assert refused.value.status_code == 401
        form = {name: option["default_value"] for name, option in args["extra_options"].items()
                if not option["is_multiple"]}
        assert form["jwt_secret"] == ""
        form.update({"user_count": 4, "spawn_rate": 4, "host": host})
        assert post_form(base + "/swarm", form)["success"]
        connect = wait_until(
            lambda: next((s for s in get_json(base + "/stats/requests")["stats"]
                          if s["name"] == "connect" and s["num_requests"] >= 4), None),
            60, "4 connects",
        )
        assert connect["num_failures"] == 0, connect
        post_form(base + "/stop", {})


def test_processes_workers_get_the_generated_secret(tmp_path: Path) -> None:
    run = run_locust(["--processes", "2", "--users", "4", "--spawn-rate", "4", "--run-time", "6s"], tmp_path)
    connect = run.stats["connect"]
    assert connect["num_requests"] >= 4 and connect["num_failures"] == 0, run.describe()
    by_process = run.checks["connections_by_process"]
    # both workers connected; a worker the master lost under load re-registers with a new index (w2)
    assert len([p for p, n in by_process.items() if n > 0]) >= 2, (by_process, run.describe())
    assert DEFAULT_SECRET not in run.stdout + run.stderr
