"""A missing third-party package is one line and exit code 2, not an import traceback.

Standard library only: it is imported before anything that could be missing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

PACKAGES = {
    "websocket": "websocket-client",
    "jwt": "PyJWT",
    "junitparser": "junitparser",
    "gevent": "gevent",
    "flask": "Flask",
    "flask_sock": "flask-sock",
    "simple_websocket": "simple-websocket",
    "wsproto": "wsproto",
    "matplotlib": "matplotlib",
    "locust": "locust",
}
"""Top-level module -> the requirements.txt line that provides it."""


def program() -> str:
    """`locust`, `python -m server`, ...: what the user typed, for the error's prefix."""
    name = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "python")
    return "python -m " + os.path.basename(os.path.dirname(sys.argv[0])) if name == "__main__.py" else name


def missing_line(module: str) -> str:
    package = PACKAGES.get(module, module)
    return (
        f"{program()}: error: the package {package} (module {module!r}) is not installed for {sys.executable}: "
        "run `pip install -r requirements.txt` with that Python's pip (README: Run it)"
    )


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """Wrap third-party imports: a requirement that is not installed ends the process with one line."""
    try:
        yield
    except ModuleNotFoundError as error:
        module = (error.name or "").split(".")[0]
        if module not in PACKAGES:
            raise
        sys.stderr.write(missing_line(module) + "\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
