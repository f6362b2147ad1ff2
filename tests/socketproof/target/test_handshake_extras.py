"""Handshake extras from options and the environment, and which of their values are secrets."""

from __future__ import annotations

import pytest

from socketproof.target import tls
from socketproof.target.handshake_extras import ExtrasError, extras_from, is_secret_name
from tests.socketproof.deployed import parse


def test_options_and_environment_combine_and_the_option_wins() -> None:
    extras = extras_from(
        parse("--header", "X-API-Key: from-option", "--query", "tenant=acme", "--origin", "https://a.example",
              "--subprotocol", "v2.chat, v1.chat"),
        {"SOCKETPROOF_HEADER_X_API_KEY": "from-env", "SOCKETPROOF_HEADER_COOKIE": "s=1; t=2",
         "SOCKETPROOF_QUERY_region": "eu", "UNRELATED": "x"},
    )
    assert extras.headers == {"X-API-Key": "from-option", "COOKIE": "s=1; t=2"}
    assert extras.query == {"region": "eu", "tenant": "acme"}
    assert extras.origin == "https://a.example" and extras.subprotocols == ("v2.chat", "v1.chat")


def test_credential_headers_and_each_cookie_are_secret() -> None:
    extras = extras_from(parse("--header", "Cookie: session=abc123; theme=dark", "--header", "X-Trace: t-1",
                               "--header", "Authorization: Basic dXNlcjpwYXNz", "--query", "api_key=q-1"), {})
    assert set(extras.secret_values()) == {"session=abc123; theme=dark", "abc123", "dark", "Basic dXNlcjpwYXNz",
                                           "q-1"}
    assert not is_secret_name("X-Trace") and is_secret_name("X-Auth-Token")


def test_names_that_carry_credentials_in_the_wild_are_secret() -> None:
    """Issue 24: jwt, pass, bearer, sig and otp names were sent to the page and the logs as written."""
    for name in ("X-JWT", "X-Pass", "X-Bearer", "X-Signature", "X-OTP", "jwt", "sig", "X-Amz-Signature"):
        assert is_secret_name(name), name
    for name in ("X-Trace", "X-Request-Id", "tenant", "room"):
        assert not is_secret_name(name), name


def test_certificate_failures_are_named_with_their_option() -> None:
    cases = {
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate": "--ca-file",
        "certificate verify failed: unable to get local issuer certificate (_ssl.c:1006)": "--ca-file",
        "certificate verify failed: Hostname mismatch, certificate is not valid for 'x'": "host name",
        "certificate verify failed: certificate has expired": "expired",
        "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required": "--client-cert",
    }
    for message, words in cases.items():
        line = tls.diagnose(message)
        assert line is not None and words in line, (message, line)
    assert tls.diagnose("[Errno 111] Connection refused") is None


def test_header_values_with_control_characters_are_refused_a_tab_is_kept() -> None:
    """Issue 24, finding 9: only CR and LF were refused; NUL, ESC or DEL went into the upgrade request."""
    for value in ("abc\x00def", "abc\x1b[2J", "abc\x7f", "abc\x0bX-Injected: yes"):
        with pytest.raises(ExtrasError, match="X-API-Key: the value holds a control character"):
            extras_from(parse("--header", f"X-API-Key: {value}"), {})
        with pytest.raises(ExtrasError, match="SOCKETPROOF_HEADER_X_TRACE"):
            extras_from(parse(), {"SOCKETPROOF_HEADER_X_TRACE": value})
    with pytest.raises(ExtrasError, match="--origin must be a URL origin"):
        extras_from(parse("--origin", "https://app.example\x00.test"), {})
    assert extras_from(parse("--header", "X-Note: a\tb"), {}).headers == {"X-Note": "a\tb"}
