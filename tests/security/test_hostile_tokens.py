"""Tokens the run did not make are text from outside (issue 24, findings 8 and 9): one with a
CR/LF from a login endpoint would split the Authorization header (websocket-client does not
check), and a 400-digit `exp` in a tokens file crashed the start-up with a traceback. Whole
`locust --headless` runs against the reference server behind a front that records every
upgrade request, asserted where the server would see them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import jwt

from tests.socketproof.deployed import upstream
from tests.socketproof.support import run_locust
from tests.support.json_endpoint import JsonEndpoint
from tests.support.server import running_server
from tests.support.tls_front import TlsFront

SECRET = "hostile-token-test-secret-0123456789abcdef"
INJECTED = "\r\nX-Injected: yes"
PREFLIGHT = "socketproof-preflight"


def good(identity: str) -> str:
    return jwt.encode({"sub": identity, "exp": time.time() + 3600}, SECRET, algorithm="HS256")


class HostileLogin(JsonEndpoint):
    """A login endpoint answering `{"access_token": issue(username)}`; `asked`: who asked, in order."""

    def __init__(self, issue: Callable[[str], str]) -> None:
        super().__init__(lambda _path, body: (200, {"access_token": issue(body["username"])}))

    @property
    def asked(self) -> list[str]:
        return [body["username"] for _path, body in self.posts]


def test_a_login_token_with_crlf_ends_the_run_before_any_upgrade(tmp_path: Path) -> None:
    with running_server(jwt_secret=SECRET) as server, HostileLogin(lambda user: good(user) + INJECTED) as login:
        with TlsFront(upstream(server)) as front:
            run = run_locust(["--host", front.url("ws"), "--token-url", login.url, "-u", "1", "-t", "5s"],
                             tmp_path / "reports")
            heads = list(front.heads)
    assert login.asked == [PREFLIGHT], login.asked
    assert run.returncode == 2, run.describe()
    lines = [line for line in run.stderr.splitlines() if "unsafe_token" in line]
    assert len(lines) == 1 and "--token-url" in lines[0] and "control character" in lines[0], run.describe()
    assert "Traceback" not in run.stderr and "X-Injected" not in run.stdout + run.stderr, run.describe()
    assert heads == [], "a refused token must not reach the server: nothing may be sent at all"


def test_a_users_login_token_with_crlf_is_a_named_failed_connect_and_never_sent(tmp_path: Path) -> None:
    def issue(user: str) -> str:  # the pre-flight passes; every user's token is hostile
        return good(user) if user == PREFLIGHT else good(user) + INJECTED

    with running_server(jwt_secret=SECRET) as server, HostileLogin(issue) as login:
        with TlsFront(upstream(server)) as front:
            run = run_locust(["--host", front.url("ws"), "--token-url", login.url, "-u", "2", "-r", "2", "-t", "4s",
                              "--send-interval", "0.3"], tmp_path / "reports")
            heads = front.websocket_heads()
    users = set(login.asked) - {PREFLIGHT}
    assert users, f"no user asked for a token: {login.asked}\n{run.describe()}"
    assert heads, "the pre-flight's upgrade did not arrive"
    for head in heads:
        assert "x-injected" not in head.headers, head.headers
        assert "\r" not in head.headers.get("authorization", "") and "\n" not in head.headers.get("authorization", "")
    # only the pre-flight connected (its operation tryout opens a second connection): no user did
    assert 1 <= len(heads) <= 2, f"only the pre-flight may have connected: {[h.target for h in heads]}"
    refused = [row for row in run.failures if row["Name"] == "connect" and "unsafe_token" in row["Error"]]
    assert refused and "X-Injected" not in refused[0]["Error"], run.failures
    assert "Traceback" not in run.stderr and "X-Injected" not in run.stdout + run.stderr, run.describe()


def test_a_tokens_file_with_a_400_digit_exp_is_exit_2_in_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    hostile = jwt.encode({"sub": "user-1", "exp": 10**400}, SECRET, algorithm="HS256")
    tokens.write_text(f"{good('user-0')}\n{hostile}\n")
    with running_server(jwt_secret=SECRET) as server:
        with TlsFront(upstream(server)) as front:
            run = run_locust(["--host", front.url("ws"), "--tokens-file", str(tokens), "-u", "1", "-t", "5s"],
                             tmp_path / "reports")
            heads = list(front.heads)
    assert run.returncode == 2, run.describe()
    errors = [line for line in run.stderr.splitlines() if line.startswith("locust: error:")]
    assert len(errors) == 1, run.describe()
    assert "--tokens-file line 2" in errors[0] and "bad_exp" in errors[0] and "exp claim is no time" in errors[0]
    assert "Traceback" not in run.stderr and hostile not in run.stdout + run.stderr, run.describe()
    assert heads == [], "the run stopped before it connected anywhere"
