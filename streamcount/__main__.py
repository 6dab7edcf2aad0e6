"""``python -m streamcount``."""

from streamcount.cli import main

raise SystemExit(main())
