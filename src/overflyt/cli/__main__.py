"""``python -m overflyt.cli ...``: the `overflyt` command."""

import sys

from overflyt.cli import main

sys.exit(main())
