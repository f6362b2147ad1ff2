"""`--token-url` against real login endpoints on 127.0.0.1 (issue 24): a plain http:// URL to a
host that is not loopback sends the token body (a password) in clear, so the run says so; a
login endpoint that redirects is never followed (its target could be anyone) and neither the
token body nor the endpoint's answer reaches the output. Whole `locust --headless` runs.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import jwt
import pytest

from tests.socketproof.support import run_locust
from tests.support.json_endpoint import JsonEndpoint
from tests.support.server import running_server

SECRET = "token-url-test-secret-0123456789abcdef"
PASSWORD = "pw-9c1e5f0a7b3d"
BODY = json.dumps({"username": "{identity}", "password": PASSWORD})
WARNING = "is plain http://: the token body (a password?) and the tokens cross the network in clear"


class Login(JsonEndpoint):
    """A login endpoint that issues a token to anyone with the password."""

    def __init__(self) -> None:
        def answer(_path: str, body: dict[str, str]) -> tuple[int, dict[str, str] | None]:
            if body.get("password") != PASSWORD:
                return 401, None
            return 200, {"access_token": jwt.encode({"sub": body["username"], "exp": time.time() + 3600},
                                                    SECRET, algorithm="HS256")}

        super().__init__(answer)


class Redirector(JsonEndpoint):
    """Answers every POST with 302 to `location`, echoing the request's body (the password) in its
    own body, as a hostile or misconfigured endpoint might."""

    def __init__(self, location: str) -> None:
        super().__init__(lambda _path, body: (302, body, {"Location": location}))


def loopback_hostname() -> str:
    """This machine's name when it resolves to 127.0.0.1 (as /etc/hosts often has it): a URL with a
    host name, not a loopback literal, that still reaches the endpoint on 127.0.0.1."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if address != "127.0.0.1" or name == "localhost":
        pytest.skip(f"the host name {name!r} does not resolve to 127.0.0.1 here ({address or 'unresolved'})")
    return name


def warnings_in(run_output: str) -> list[str]:
    return [line for line in run_output.splitlines() if WARNING in line]


def test_a_plain_http_token_url_to_a_named_host_warns_that_the_password_goes_in_clear(tmp_path: Path) -> None:
    """The run works (the endpoint issues the tokens) and says, at start-up, that its token body
    crosses the network in clear; the warning names the URL, never the password, and is said once
    (the deployment is prepared at init and again at test_start with the same options)."""
    host = loopback_hostname()
    with running_server(jwt_secret=SECRET) as server, Login() as login:
        url = login.url.replace("127.0.0.1", host)
        run = run_locust(["--host", server.ws_url.rsplit("/", 1)[0], "--token-url", url, "-u", "1", "-t", "3s"],
                         tmp_path / "reports", env={"SOCKETPROOF_TOKEN_BODY": BODY})
    assert run.returncode == 0, run.describe()
    assert login.posts, "the login endpoint was never asked: the named host did not reach it"
    lines = warnings_in(run.stdout + run.stderr)
    assert len(lines) == 1, run.describe()
    assert all(f"--token-url {url} " in line and "use https://" in line for line in lines), lines
    assert PASSWORD not in run.stdout + run.stderr


def test_a_plain_http_token_url_on_loopback_does_not_warn(tmp_path: Path) -> None:
    """127.0.0.1 never leaves the machine: nothing crosses a network, so no warning."""
    with running_server(jwt_secret=SECRET) as server, Login() as login:
        run = run_locust(["--host", server.ws_url.rsplit("/", 1)[0], "--token-url", login.url, "-u", "1", "-t", "3s"],
                         tmp_path / "reports", env={"SOCKETPROOF_TOKEN_BODY": BODY})
    assert run.returncode == 0, run.describe()
    assert login.posts, "the login endpoint was never asked"
    assert warnings_in(run.stdout + run.stderr) == [], run.describe()


def test_a_token_url_that_redirects_is_not_followed_and_its_body_never_shown(tmp_path: Path) -> None:
    """302 to another local endpoint: the start-up fails with one line naming the 302, the
    redirect's target gets no request (the password would go wherever the login endpoint says),
    and neither the token body nor the redirect's answer (which echoes it) reaches the output."""
    with running_server(jwt_secret=SECRET) as server, Login() as elsewhere:
        with Redirector(elsewhere.url) as login:
            run = run_locust(["--host", server.ws_url.rsplit("/", 1)[0], "--token-url", login.url, "-u", "1",
                              "-t", "3s"], tmp_path / "reports", env={"SOCKETPROOF_TOKEN_BODY": BODY})
    assert len(login.posts) == 1, login.posts  # the pre-flight asked once and did not retry
    assert elsewhere.posts == [], "the redirect was followed"
    assert run.returncode == 2, run.describe()
    lines = [line for line in run.stderr.splitlines() if f"--token-url {login.url}" in line]
    assert len(lines) == 1 and "HTTP 302" in lines[0] and "redirect, not followed" in lines[0], run.describe()
    assert PASSWORD not in run.stdout + run.stderr, "the token body reached the output"
    assert "Traceback" not in run.stderr, run.describe()
