"""Shared pieces of the "deployed service" tests: Locust's real parser with Socketproof's options,
and a reference server behind a TLS front made of certificates generated for the test."""

from __future__ import annotations

import argparse
import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from locust.argument_parser import get_parser

from socketproof.run.arguments import add_arguments
from tests.support.server import ServerHandle, running_server
from tests.support.tls_certs import Authority
from tests.support.tls_front import TlsFront, server_context

SECRET = "deployed-test-secret-0123456789abcdef"


def parse(*argv: str) -> Any:
    """Locust's real parser with Socketproof's options, as the init event sees them."""
    parser = get_parser()
    try:
        add_arguments(parser)
    except argparse.ArgumentError:  # socketproof.run.plugin, once imported, adds them through Locust's event
        pass
    return parser.parse_args(["--headless", *argv])


def upstream(server: ServerHandle) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(server.http_url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80)


@contextlib.contextmanager
def tls_target(folder: Path, *, client_ca: bool = False, expired: bool = False, hosts: tuple[str, ...] = (
        "127.0.0.1", "localhost"), **settings: Any) -> Iterator[tuple[ServerHandle, TlsFront, Authority]]:
    """The reference server behind a TLS front whose certificate a private CA signed."""
    authority = Authority(folder)
    issued = authority.issue("server", hosts=hosts, expired=expired)
    context = server_context(issued.cert, issued.key, authority.path if client_ca else None)
    with running_server(jwt_secret=settings.pop("jwt_secret", SECRET), **settings) as server:
        with TlsFront(upstream(server), context) as front:
            yield server, front, authority
