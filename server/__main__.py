"""`python -m server`: run the reference server on gevent (monkey-patched first)."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from server.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
