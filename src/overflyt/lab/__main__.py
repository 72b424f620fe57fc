"""``python -m overflyt.lab up|down|status`` (the same as ``overflyt lab ...``)."""

import sys

from overflyt.cli.lab import main

sys.exit(main())
