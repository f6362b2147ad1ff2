"""A token sent as a query parameter stays out of failure texts (issue 24, finding 3).

A real headless run with `--token-query access_token` against a real reference server behind a
proxy that forwards the pre-flight and then drops every later connection before its upgrade
answer: every user's connect fails, and Locust keys each failure on its text. Before: the text
carried the whole URL, `...?access_token=<token>`, into the Failures table, --csv and --html.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tests.socketproof.support import run_locust
from tests.support.faultproxy import FaultProxy
from tests.support.server import running_server

SECRET = "token-in-failures-secret-0123456789"


class DropsAfterFirst(FaultProxy):
    """Forwards its first connection (the pre-flight); closes every later one as soon as it arrives."""

    def _handle(self, downstream: Any, address: Any) -> None:
        if self.accepted == 0:
            super()._handle(downstream, address)
            return
        self.accepted += 1
        with contextlib.suppress(OSError):
            downstream.recv(65536)  # the upgrade request, with its URL
        downstream.close()


def test_failure_texts_reports_and_output_carry_no_token_from_the_url(tmp_path: Path) -> None:
    html = tmp_path / "locust.html"
    with running_server(jwt_secret=SECRET) as server:
        port = int(server.ws_url.rsplit(":", 1)[1].split("/")[0])
        with DropsAfterFirst(("127.0.0.1", port)) as proxy:
            run = run_locust(["--host", proxy.url, "--jwt-secret", SECRET, "--token-query", "access_token",
                              "--users", "3", "--spawn-rate", "3", "--run-time", "4s", "--html", str(html)], tmp_path)
            assert proxy.accepted > 2, "the users came after the pre-flight"
    failures = (tmp_path / "stats_failures.csv").read_text()
    assert "connect" in failures and "127.0.0.1" in failures, failures  # the failures are there, with the host
    texts = {"stdout": run.stdout, "stderr": run.stderr, "failures csv": failures, "html": html.read_text(),
             **{p.name: p.read_text() for p in tmp_path.glob("*.json")}}
    for where, text in texts.items():
        assert "access_token=" not in text, f"the token's query parameter is in {where}"
        assert "eyJ" not in text, f"a JWT is in {where}"
    assert not run.leftovers
