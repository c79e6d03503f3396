"""``python -m loadtest``: see ``loadtest.cli``."""

import sys

from .cli import main

sys.exit(main())
