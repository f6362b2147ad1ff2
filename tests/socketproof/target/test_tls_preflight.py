"""The pre-flight against real TLS servers (generated certificates): each certificate problem is
one line naming the option that fixes it, and the options fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from socketproof.run.arguments import build_run_adapter
from socketproof.run.options import load_options
from socketproof.target import deployment, http_get, preflight
from tests.socketproof.deployed import SECRET, parse, tls_target


def check(host: str, *argv: str) -> preflight.Finding | None:
    parsed = parse("--jwt-secret", SECRET, *argv)
    load = load_options(parsed)
    return preflight.check(host, load, adapter=build_run_adapter(parsed, load), timeout=5,
                           deployment=deployment.build(parsed, {}))


def test_a_private_ca_is_trusted_with_ca_file_and_named_without_it(tmp_path: Path) -> None:
    with tls_target(tmp_path) as (_server, front, authority):
        host = front.url("wss")
        assert check(host, "--ca-file", str(authority.path)) is None
        finding = check(host)
        assert finding is not None and finding.fatal, finding
        assert "--ca-file" in finding.message and "issuer" in finding.message, finding.message
        assert "\n" not in finding.message and "is the server running" not in finding.message


def test_insecure_connects_without_the_ca(tmp_path: Path) -> None:
    with tls_target(tmp_path) as (_server, front, _authority):
        assert check(front.url("wss"), "--insecure") is None


def test_a_certificate_for_another_host_name_is_named(tmp_path: Path) -> None:
    with tls_target(tmp_path, hosts=("other.example",)) as (_server, front, authority):
        finding = check(front.url("wss"), "--ca-file", str(authority.path))
        assert finding is not None and finding.fatal
        assert "not for this host name" in finding.message, finding.message


def test_an_expired_certificate_is_named(tmp_path: Path) -> None:
    with tls_target(tmp_path, expired=True) as (_server, front, authority):
        finding = check(front.url("wss"), "--ca-file", str(authority.path))
        assert finding is not None and finding.fatal
        assert "expired" in finding.message, finding.message


def test_a_server_that_requires_a_client_certificate(tmp_path: Path) -> None:
    with tls_target(tmp_path, client_ca=True) as (_server, front, authority):
        client = authority.issue("client", hosts=(), client=True)
        host = front.url("wss")
        finding = check(host, "--ca-file", str(authority.path))
        assert finding is not None and finding.fatal, finding
        assert "--client-cert" in finding.message and "--client-key" in finding.message, finding.message
        ok = check(host, "--ca-file", str(authority.path), "--client-cert", str(client.cert),
                   "--client-key", str(client.key))
        assert ok is None
        assert any(head.client_cert for head in front.websocket_heads()), "the server saw no client certificate"


def test_the_stats_read_uses_the_same_ca(tmp_path: Path) -> None:
    with tls_target(tmp_path) as (server, front, authority):
        built = deployment.build(parse("--ca-file", str(authority.path)), {})
        token = server.admin_token()
        answer = http_get.get(front.url("https") + "/stats", {"Authorization": f"Bearer {token}"}, 5,
                              built.ssl_context)
        assert answer.status == 200
        with pytest.raises(http_get.HttpGetError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            http_get.get(front.url("https") + "/stats", {"Authorization": f"Bearer {token}"}, 5)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--insecure", "--strict"), "--insecure cannot be used with --strict"),
        (("--ca-file", "/nonexistent/ca.pem"), "--ca-file: no such file"),
        (("--client-key", "k.pem"), "--client-key needs --client-cert"),
        (("--header", "no colon here"), "--header must be 'Name: value'"),
        (("--header", "Origin: https://x"), "use --origin"),
        (("--query", "novalue"), "--query must be name=value"),
        (("--jwt-algorithm", "RS256"), "--jwt-private-key"),
        (("--jwt-algorithm", "XX1"), "--jwt-algorithm must be one of"),
        (("--jwt-claim", "=1"), "--jwt-claim must be name=value"),
        (("--jwt-subject", "fixed"), "--jwt-subject must contain {identity}"),
        (("--token-url", "ftp://x"), "--token-url must be an http"),
        (("--tokens-file", "t", "--token-url", "http://x"), "give one"),
    ],
)
def test_bad_deployment_options_are_one_line_naming_the_option(argv: tuple[str, ...], words: str) -> None:
    with pytest.raises(deployment.DeploymentError) as caught:
        deployment.build(parse(*argv), {})
    assert words in str(caught.value) and "\n" not in str(caught.value)
