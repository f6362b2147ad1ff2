"""The web UI's start endpoint (issue 24, findings 1 and 2): real `locust` web UIs, real POSTs to
/swarm, a real reference server, and listeners that record every byte anyone sends them.

Before: a POST setting `tokens_file`, `insecure` and another host started a run that sent the
file's lines, the start-up credential header and tokens minted with the start-up secret to that
host; a changed `token_url` got the start-up `token_body`; adapter options carrying credentials
were written into the page.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.json_endpoint import JsonEndpoint
from tests.support.server import ServerHandle, running_server
from tests.user.support import get_json, post_form, wait_until, web_ui

SECRET = "webui-start-secret-" + "9" * 16
HEADER_VALUE = "start-up-header-credential-1234"


class Recorder:
    """A TCP listener that keeps whatever it is sent (an upgrade, a login POST) and answers nothing."""

    def __init__(self) -> None:
        self.received = bytearray()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(65536):
                        self.received += chunk

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        assert not self._thread.is_alive()


@contextlib.contextmanager
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    try:
        yield found
    finally:
        found.close()


def login_endpoint(server: ServerHandle) -> JsonEndpoint:
    """A login endpoint that answers every POST with a token the reference server accepts."""
    return JsonEndpoint(lambda _path, body: (200, {"access_token": server.token(str(body.get("username", "u")))}))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with running_server(jwt_secret=SECRET) as handle:
        yield handle


def base_of(server: ServerHandle) -> str:
    return server.ws_url.rsplit("/ws", 1)[0]


def form_of(base: str) -> dict[str, Any]:
    """What the browser posts: every field the page shows, with the value it filled in."""
    page = urllib_text(base + "/")
    options = json.loads(page.split("templateArgs = ", 1)[1].split("\n", 1)[0].strip().rstrip(";"))["extra_options"]
    form = {name: option["default_value"] for name, option in options.items() if not option["is_multiple"]}
    form.update({"user_count": 2, "spawn_rate": 2})
    return form


def urllib_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", "replace")


def stop_run(base: str) -> None:
    post_form(base + "/stop", {})
    wait_until(lambda: get_json(base + "/stats/requests")["state"] in ("stopped", "ready"), 30, "the run to stop")


def test_a_post_with_options_the_form_does_not_show_is_refused_and_nothing_leaves(
    server: ServerHandle, tmp_path: Path
) -> None:
    lines = tmp_path / "passwd"
    lines.write_text("root:x:0:0:root:/root:/bin/bash\nstart-up-file-line-credential\n")
    log = tmp_path / "locust.log"
    with recorder() as elsewhere, web_ui(["--host", base_of(server), "--jwt-secret", SECRET,
                                          "--header", f"X-API-Key: {HEADER_VALUE}"], log) as base:
        form = {**form_of(base), "host": elsewhere.url, "tokens_file": str(lines), "insecure": "true"}
        answer = post_form(base + "/swarm", form)
        assert answer["success"] is False, answer
        assert "tokens_file" in answer["message"] and "insecure" in answer["message"], answer
        time.sleep(2)
        assert get_json(base + "/stats/requests")["state"] == "ready"
        assert bytes(elsewhere.received) == b"", "something was sent to the host the POST named"
    assert "start refused" in log.read_text()


def test_start_up_credentials_go_only_to_the_start_up_host(server: ServerHandle, tmp_path: Path) -> None:
    log = tmp_path / "locust.log"
    with recorder() as elsewhere, web_ui(["--host", base_of(server), "--jwt-secret", SECRET,
                                          "--header", f"X-API-Key: {HEADER_VALUE}"], log) as base:
        answer = post_form(base + "/swarm", {**form_of(base), "host": elsewhere.url})
        assert answer["success"] is False, answer
        assert "--jwt-secret" in answer["message"] and "--header X-API-Key" in answer["message"], answer
        time.sleep(2)
        assert bytes(elsewhere.received) == b"", "the start-up credentials went to another host"
        # The start-up host itself still starts, with the start-up credentials.
        started = post_form(base + "/swarm", {**form_of(base), "host": base_of(server)})
        assert started["success"] is True, started
        wait_until(lambda: any(s["name"] == "connect" and s["num_requests"] >= 2 and s["num_failures"] == 0
                               for s in get_json(base + "/stats/requests")["stats"]), 60, "connects")
        stop_run(base)


def test_a_secret_typed_into_the_form_may_go_to_another_host(server: ServerHandle, tmp_path: Path) -> None:
    with running_server(jwt_secret="other-server-secret-" + "7" * 16) as other, \
            web_ui(["--host", base_of(server), "--jwt-secret", SECRET], tmp_path / "locust.log") as base:
        form = {**form_of(base), "host": base_of(other), "jwt_secret": "other-server-secret-" + "7" * 16}
        started = post_form(base + "/swarm", form)
        assert started["success"] is True, started
        wait_until(lambda: any(s["name"] == "connect" and s["num_requests"] >= 2 and s["num_failures"] == 0
                               for s in get_json(base + "/stats/requests")["stats"]), 60, "connects to the other")
        stop_run(base)


def test_the_start_up_token_body_goes_only_to_the_start_up_token_url(server: ServerHandle, tmp_path: Path) -> None:
    body = '{"username": "{identity}", "password": "start-up-password-5678"}'
    with login_endpoint(server) as endpoint, recorder() as elsewhere, \
            web_ui(["--host", base_of(server), "--token-url", endpoint.url, "--token-body", body],
                   tmp_path / "locust.log") as base:
        answer = post_form(base + "/swarm", {**form_of(base), "token_url": elsewhere.url + "/login"})
        assert answer["success"] is False, answer
        assert "--token-body" in answer["message"], answer
        time.sleep(2)
        assert b"start-up-password" not in bytes(elsewhere.received) and bytes(elsewhere.received) == b""


def test_adapter_options_that_carry_credentials_are_not_in_the_page(server: ServerHandle, tmp_path: Path) -> None:
    values = {"--socketio-auth": '{"token": "sio-auth-credential-4321"}',
              "--graphql-init": '{"Authorization": "Bearer gql-init-credential-8765"}',
              "--subprotocol": "bearer.subprotocol-credential-2468"}
    args = ["--host", base_of(server), "--jwt-secret", SECRET]
    for flag, value in values.items():
        args += [flag, value]
    with web_ui(args, tmp_path / "locust.log") as base:
        page = urllib_text(base + "/")
        answers = get_json(base + "/stats/requests")
    for flag, marker in zip(values, ("sio-auth-credential-4321", "gql-init-credential-8765",
                                     "subprotocol-credential-2468"), strict=True):
        assert marker not in page, f"{flag}'s value is in the page"
        assert marker not in json.dumps(answers), f"{flag}'s value is in /stats/requests"
