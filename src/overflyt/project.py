"""Where the overflyt project is: the directory holding ``playbooks/``, ``roles/`` and
``collections/`` that a run hands to Ansible.

Found from, in this order: the ``OVERFLYT_PROJECT_DIR`` setting; the plan's project (the nearest
directory above the plan file that holds ``playbooks/`` and ``roles/``); the current directory or
one above it. Never from where the Python package happens to be installed.

The state home (run records, wave states, locks, move slots) is ``OVERFLYT_STATE_DIR``, else
``<project>/.overflyt/state`` of the plan's project: the same from every working directory, so
runs, rollbacks and locks started from two directories see each other (:func:`state_home`).
"""

from __future__ import annotations

import os
from pathlib import Path

from overflyt.errors import UsageError

PROJECT_ENV = "OVERFLYT_PROJECT_DIR"
STATE_ENV = "OVERFLYT_STATE_DIR"
STATE_IN_PROJECT = Path(".overflyt") / "state"


def is_project(directory: Path) -> bool:
    return (directory / "playbooks").is_dir() and (directory / "roles").is_dir()


# The project of the plans this process has looked one up for: what a lookup without a plan (the
# report templates) uses, so a command run from another directory finds its plan's project.
_PLAN_PROJECTS: list[Path] = []


def find_project(plan_dir: Path | None = None) -> Path:
    """The project directory for a plan in ``plan_dir`` (or for no plan: the project of the last
    plan this process found one for, else the current directory's); UsageError naming where it
    looked when there is none."""
    explicit = os.environ.get(PROJECT_ENV)
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not is_project(path):
            raise UsageError(f"{PROJECT_ENV}={explicit}: no playbooks/ and roles/ there")
        return path
    if plan_dir is None and _PLAN_PROJECTS:
        return _PLAN_PROJECTS[-1]
    looked: list[str] = []
    for start in (plan_dir, Path.cwd()):
        if start is None:
            continue
        start = start.resolve()
        for directory in (start, *start.parents):
            if is_project(directory):
                if plan_dir is not None:
                    _PLAN_PROJECTS[:] = [directory]
                return directory
        looked.append(f"{start} and above")
    raise UsageError(
        "no overflyt project (a directory with playbooks/ and roles/) found in "
        + "; ".join(looked)
        + f": set {PROJECT_ENV} to it"
    )


def state_home(plan_dir: Path | None = None) -> Path:
    """Where run records, wave states, locks and move slots live: ``OVERFLYT_STATE_DIR``, else
    ``.overflyt/state`` in the project of the plan in ``plan_dir`` (:func:`find_project`) — never a
    directory that depends on where the command was started from when a plan is given."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    try:
        project = find_project(plan_dir)
    except UsageError as exc:
        raise UsageError(f"{exc} (or {STATE_ENV} to where run records live)") from None
    return project / STATE_IN_PROJECT
