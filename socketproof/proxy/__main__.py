"""`python -m socketproof.proxy`: see socketproof/proxy/cli.py."""

import sys

from socketproof.proxy.cli import main

sys.exit(main())
