"""The lab: real peers on one machine (a vCenter simulator, FRR routers reached over SSH, server
and client namespaces), generated from a plan. ``overflyt lab up | down | status``; lab/README.md."""

from overflyt.lab.runtime import LabError, down, exclusive, lab_processes, probe, require_root, status, up

__all__ = ["LabError", "down", "exclusive", "lab_processes", "probe", "require_root", "status", "up"]
