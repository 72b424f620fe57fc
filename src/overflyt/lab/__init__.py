"""The lab: real peers on one machine (a vCenter simulator, FRR routers reached over SSH, server
and client namespaces), generated from a plan. ``overflyt lab up | down | status``; lab/README.md."""

from overflyt.lab.common import LabError, require_root
from overflyt.lab.health import probe
from overflyt.lab.lock import exclusive
from overflyt.lab.processes import lab_processes
from overflyt.lab.runtime import down, status, transfer, up

__all__ = ["LabError", "down", "exclusive", "lab_processes", "probe", "require_root", "status", "transfer", "up"]
