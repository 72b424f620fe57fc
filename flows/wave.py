"""Temporary: the flows moved to one module each (flows/migrate_wave.py, ...); kept until every
caller imports them from :mod:`flows`."""

from flows import *  # noqa: F403
from flows import __all__  # noqa: F401
from overflyt.orchestration.local import prepare_local_database  # noqa: F401
