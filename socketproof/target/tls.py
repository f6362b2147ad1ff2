"""TLS for a deployed service: whom to trust, which client certificate, and what a failure means.

One `ssl.SSLContext` per run, built from --ca-file, --client-cert/--client-key and --insecure,
is used by every connection the run makes: the users' WebSocket connections (client/transport.py),
the pre-flight, and the HTTP reads (/stats, --server-connections). `diagnose` turns OpenSSL's
words for a failed handshake into one line naming the option that fixes it.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from typing import Any

INSECURE_WARNING = (
    "--insecure: server certificates are NOT verified; anyone on the path can read and change this run's traffic"
)


class TlsOptionError(ValueError):
    """A TLS option no run can use (the line names the option)."""


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    """What the TLS options say; empty means the system's trust store, no client certificate."""

    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    insecure: bool = False

    @property
    def given(self) -> bool:
        return bool(self.ca_file or self.client_cert or self.insecure)

    def context(self) -> ssl.SSLContext | None:
        """The run's context (None when no TLS option was given: the libraries' own defaults).
        Raises TlsOptionError naming the option whose file cannot be used."""
        if not self.given:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.ca_file:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as error:
                raise TlsOptionError(f"--ca-file {self.ca_file}: not a readable PEM certificate bundle ({_why(error)})"
                                     ) from None
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert, self.client_key or None)
            except (OSError, ssl.SSLError) as error:
                raise TlsOptionError(
                    f"--client-cert/--client-key: cannot load the client certificate and its key ({_why(error)})"
                ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def settings_from(parsed: Any) -> TlsSettings:
    """The TLS options from Locust's parsed options, checked for shape (files exist, no
    --insecure with --strict, no key without a certificate)."""
    ca_file = str(getattr(parsed, "ca_file", "") or "")
    cert = str(getattr(parsed, "client_cert", "") or "")
    key = str(getattr(parsed, "client_key", "") or "")
    insecure = bool(getattr(parsed, "insecure", False))
    if insecure and bool(getattr(parsed, "strict", False)):
        raise TlsOptionError("--insecure cannot be used with --strict: a strict run verifies certificates "
                             "(give the server's CA with --ca-file instead)")
    if key and not cert:
        raise TlsOptionError("--client-key needs --client-cert (the certificate the key belongs to)")
    for flag, path in (("--ca-file", ca_file), ("--client-cert", cert), ("--client-key", key)):
        if path and not os.path.isfile(path):
            raise TlsOptionError(f"{flag}: no such file: {path}")
    return TlsSettings(ca_file, cert, key, insecure)


def _why(error: BaseException) -> str:
    return getattr(error, "reason", None) or getattr(error, "strerror", None) or type(error).__name__


# -- naming a failed handshake ------------------------------------------------------------

_PROBLEMS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("certificate has expired",), "the server's certificate has expired (or this machine's clock is wrong): "
                                   "renew it on the server"),
    (("certificate is not yet valid",), "the server's certificate is not valid yet: check this machine's clock"),
    (("hostname mismatch", "ip address mismatch", "doesn't match"),
     "the server's certificate is not for this host name: use a --host name the certificate names"),
    (("self-signed certificate", "self signed certificate", "unable to get local issuer certificate",
      "unable to verify the first certificate", "unable to get issuer certificate"),
     "the server's certificate is signed by an issuer this machine does not trust: give its CA with --ca-file "
     "(a PEM file)"),
    (("certificate required", "certificate_required", "alert bad certificate", "alert unknown ca",
      "alert certificate unknown"),
     "the server requires a client certificate it trusts: give one with --client-cert and --client-key"),
)


def diagnose(message: str) -> str | None:
    """The certificate problem in a failed connection's message, with the option that fixes it;
    None when the failure is not about certificates."""
    lowered = message.lower()
    for needles, line in _PROBLEMS:
        if any(needle in lowered for needle in needles):
            return line
    if "certificate verify failed" in lowered:
        return "the server's certificate did not verify: give its CA with --ca-file"
    if "wrong version number" in lowered or "packet length too long" in lowered:
        return "the server does not speak TLS on this port: use ws:// or http:// in --host"
    return None


def probe(url: str, context: ssl.SSLContext | None, timeout: float = 3.0) -> str | None:
    """Why a wss:// or https:// server ended a connection, when the failure itself said nothing
    (a reset, an EOF): a bare TLS handshake, then a short read that catches the alert a server
    sends after the handshake (TLS 1.3 asks for the client certificate only then). None: no
    TLS problem seen."""
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    context = context or ssl.create_default_context()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as sock:
                sock.settimeout(min(1.0, timeout))
                try:
                    sock.recv(1)
                except TimeoutError:
                    return None
    except ssl.SSLError as error:
        return str(error)
    except OSError:
        return None
    return None
