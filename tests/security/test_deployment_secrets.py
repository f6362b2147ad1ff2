"""A deployed service's credentials (API-key and cookie headers, pre-issued tokens, a login body,
a private key and the files they come from) are used by the run and shown nowhere: not in the web
UI's page or answers, not in the log, not in the reports (issue 18)."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.security.test_secrets import AUDIENCE, run_in_web_ui
from tests.socketproof.support import run_locust
from tests.support.server import running_server
from tests.support.tls_certs import signing_keys
from tests.user.support import web_ui


def test_headers_tokens_and_file_paths_never_reach_the_page_or_the_log(tmp_path: Path) -> None:
    api_key = "key-" + secrets.token_hex(8)
    cookie = "sess-" + secrets.token_hex(8)
    body_password = "pw-" + secrets.token_hex(8)
    with running_server(jwt_secret="jwt-" + secrets.token_hex(16), jwt_audience=AUDIENCE) as server:
        tokens = [server.token(f"user-{n}") for n in range(3)]
        tokens_file = tmp_path / "issued-tokens-file.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        host = server.ws_url.rsplit("/ws", 1)[0]
        args = ["--host", host, "--jwt-audience", AUDIENCE, "--tokens-file", str(tokens_file),
                "--header", f"X-API-Key: {api_key}", "--loglevel", "DEBUG"]
        env = {"SOCKETPROOF_HEADER_COOKIE": f"session={cookie}",
               "SOCKETPROOF_TOKEN_BODY": f'{{"username": "{{identity}}", "password": "{body_password}"}}'}
        log = tmp_path / "locust.log"
        with web_ui(args, log, env) as base:
            answers, rows = run_in_web_ui(base, host, {})
        stats = {row["check"]: row for row in rows.values()}
    assert stats["cleanup"]["verdict"] in ("PASS", "UNKNOWN")
    for name, text in {**answers, "log": log.read_text()}.items():
        for secret in (api_key, cookie, body_password, *tokens):
            assert secret not in text, f"a secret ({secret[:6]}...) is in {name}"
    assert str(tokens_file) not in answers["page"] and "issued-tokens-file" not in answers["page"]


def test_a_private_key_and_its_path_stay_out_of_the_reports(tmp_path: Path) -> None:
    private, public = signing_keys(tmp_path, "ec256")
    with running_server(jwt_algorithm="ES256", jwt_public_key=str(public)) as server:
        run = run_locust(["--host", server.ws_url.rsplit("/ws", 1)[0], "--jwt-algorithm", "ES256",
                          "--jwt-private-key", str(private), "-u", "2", "-r", "2", "-t", "4s", "--loglevel", "DEBUG"],
                         tmp_path / "reports")
    assert run.returncode == 0, run.describe()
    key_lines = [line for line in private.read_text().splitlines() if "-----" not in line]
    texts = [run.stdout, run.stderr] + [p.read_text(errors="replace") for p in (tmp_path / "reports").rglob("*")
                                        if p.is_file()]
    for text in texts:
        assert not any(line in text for line in key_lines), "private key material reached the output or a report"
