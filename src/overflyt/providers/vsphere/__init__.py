"""The vSphere provider (being split by job; this commit only moves the module)."""

from overflyt.providers.vsphere.changes import *  # noqa: F403
