"""The start guard's rules as pure functions (the real web UI runs: tests/security/test_webui_start.py)."""

from __future__ import annotations

import types

from socketproof.run.start_guard import StartupTarget, refusal, same_target, startup_target
from socketproof.target.handshake_extras import HandshakeExtras

SHOWN = {"ws_path": {}, "jwt_secret": {}, "admin_token": {}, "token_url": {}, "token_body": {}}
TARGET = StartupTarget(hosts=frozenset({same_target("ws://127.0.0.1:8000")}), token_url="http://127.0.0.1:9/login",
                       secret_fields=("jwt_secret",), fixed_credentials=("--header X-API-Key",),
                       token_body_given=True)


def test_the_form_fields_and_the_start_up_host_start() -> None:
    form = {"user_count": "2", "spawn_rate": "2", "host": "http://127.0.0.1:8000/", "ws_path": "", "jwt_secret": ""}
    assert refusal(form, SHOWN, TARGET) is None


def test_a_field_the_form_does_not_show_is_refused_by_name() -> None:
    answer = refusal({"host": "ws://127.0.0.1:8000", "tokens_file": "/etc/passwd", "insecure": "true"}, SHOWN, TARGET)
    assert answer is not None and "insecure, tokens_file" in answer


def test_another_host_with_start_up_credentials_in_play_is_refused_naming_them() -> None:
    answer = refusal({"host": "ws://evil.example:80", "jwt_secret": ""}, SHOWN, TARGET)
    assert answer is not None and "--jwt-secret" in answer and "--header X-API-Key" in answer


def test_another_host_is_fine_once_nothing_from_start_up_goes_there() -> None:
    typed = StartupTarget(hosts=TARGET.hosts, secret_fields=("jwt_secret",))
    assert refusal({"host": "ws://other:80", "jwt_secret": "typed-for-other"}, SHOWN, typed) is None
    assert refusal({"host": "ws://other:80", "jwt_secret": ""}, SHOWN, typed) is not None
    assert refusal({"host": "ws://other:80"}, SHOWN, StartupTarget(hosts=TARGET.hosts)) is None


def test_another_token_url_gets_no_start_up_token_body() -> None:
    form = {"host": "ws://127.0.0.1:8000", "jwt_secret": "x", "token_url": "http://collector:80/login"}
    assert "--token-body" in (refusal(form, SHOWN, TARGET) or "")
    assert refusal({**form, "token_body": '{"username": "{identity}"}'}, SHOWN, TARGET) is None
    assert refusal({**form, "token_url": "http://127.0.0.1:9/login"}, SHOWN, TARGET) is None


def test_http_and_ws_schemes_name_the_same_target_and_case_does_not_matter() -> None:
    assert same_target("http://Host:80/base/") == same_target("ws://host:80/base")
    assert same_target("https://h:443") == same_target("wss://h:443") != same_target("ws://h:443")


def test_the_start_up_target_lists_every_credential_from_the_options() -> None:
    parsed = types.SimpleNamespace(tokens_file="t.txt", token_url="", jwt_private_key="k.pem", client_cert="")
    extras = HandshakeExtras(headers={"X-API-Key": "k", "X-Trace": "t"}, query={"sig": "s", "tenant": "a"})
    target = startup_target(["ws://h:1", ""], parsed, {"jwt_secret", "token_body"},
                            types.SimpleNamespace(extras=extras))
    assert target.hosts == frozenset({"ws://h:1"})
    assert target.fixed_credentials == ("--header X-API-Key", "--query sig", "--tokens-file", "--jwt-private-key")
    assert target.secret_fields == ("jwt_secret",) and target.token_body_given
