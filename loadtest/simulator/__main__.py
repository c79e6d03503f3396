"""``python -m loadtest.simulator``: see ``cli``."""

from .cli import main

raise SystemExit(main())
