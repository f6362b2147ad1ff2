"""A user's mistake before any user starts: one line naming it, exit code 2, nothing left running."""

from __future__ import annotations

import sys
from typing import NoReturn

from socketproof.target import embedded


def usage_error(message: str) -> NoReturn:
    """`locust: error: MESSAGE` and exit 2 (the embedded server, if started, is stopped first)."""
    embedded.stop()
    sys.stderr.write(f"locust: error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)
