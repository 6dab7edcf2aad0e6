"""``python -m streamcount``."""

import sys

try:
    from streamcount.cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C before main() or while the interpreter winds down
    print("interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
