"""`python -m server`: run the reference server on gevent (monkey-patched first)."""

import sys


def _missing(error: ModuleNotFoundError) -> None:
    """A requirement is not installed: one line and exit 2, not a traceback."""
    sys.stderr.write(
        f"python -m server: error: the package {error.name} is not installed for {sys.executable}: "
        "run `pip install -r requirements.txt` with that Python's pip (README: Run it)\n"
    )
    sys.exit(2)


try:
    from gevent import monkey
except ModuleNotFoundError as error:
    _missing(error)

monkey.patch_all()

try:
    from server.serve import main
except ModuleNotFoundError as error:
    if not (error.name or "").startswith(("server", "client", "checks")):  # a missing requirement, not a bug
        _missing(error)
    raise

if __name__ == "__main__":
    sys.exit(main())
