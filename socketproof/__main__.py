"""`python -m socketproof --help`: Locust's options and Socketproof's, with their defaults.

`locust --help` prints its help before it imports the locustfiles, so the options a plugin
adds (every Socketproof option, the adapters' included) are not in it; this prints the
same parser with them registered.
"""

from __future__ import annotations

import sys

from locust.argument_parser import get_parser

import socketproof.run.plugin  # noqa: F401  (registers the options on Locust's parser)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = get_parser()
    parser.prog = "locust"
    if args and args[0] not in ("-h", "--help"):
        sys.stderr.write("usage: python -m socketproof --help  (run the load itself with `locust`)\n")
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
