"""``python -m overflyt.lab up|down|status`` (the same as ``overflyt lab ...``)."""

import sys

from overflyt.lab.cli import main

sys.exit(main())
