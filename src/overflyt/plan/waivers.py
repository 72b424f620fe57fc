"""Waivers: known pre-check findings a named person accepted, with a reason, until a date.

``waivers.yml`` lies beside the plan (read by :mod:`overflyt.plan.loader`, validated with file and
line like the plan; its JSON Schema is ``overflyt plan schema --waivers``)::

    waivers:
      - finding: vm.snapshots          # the pre-check rule's id
        item: ndj-file01               # the finding's subject: a VM, device, site, datastore ... name
        reason: the municipality keeps the snapshot until the archive is copied (SAG-4411)
        approved_by: Mette Holm
        expires: 2027-04-01            # the last day it applies (Europe/Copenhagen)

What a waiver does to a pre-check is :mod:`overflyt.precheck.waivers`' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import Field, model_validator

from overflyt.plan.model import Model

FILE = "waivers.yml"


class Waiver(Model):
    """One accepted finding."""

    finding: str = Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$",
        description="The id of the pre-check rule whose finding is accepted, e.g. vm.snapshots (docs/prechecks.md).",
    )
    item: str = Field(
        min_length=1,
        description="The finding's subject, exactly as the pre-check report names it: a VM's vSphere name, a "
        "device's hostname, a site id, a datastore, a vCenter ...",
    )
    reason: str = Field(min_length=1, description="Why the finding is accepted (shown in every report).")
    approved_by: str = Field(min_length=1, description="Who accepted it (shown in every report).")
    expires: date = Field(
        description="The last day the waiver applies (YYYY-MM-DD, the plan's time zone); after it the finding "
        "blocks again and the expired waiver is itself a warning."
    )

    @model_validator(mode="after")
    def _not_blank(self) -> Waiver:
        for name in ("item", "reason", "approved_by"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{name} must not be blank")
        return self


class WaiversFile(Model):
    """``waivers.yml``: the waivers of the plan beside it."""

    waivers: list[Waiver] = Field(default=[], description="The accepted findings; one per finding id and item.")


@dataclass(frozen=True)
class PlacedWaiver:
    """A waiver and where it is written (``waivers.yml:12``), for messages."""

    waiver: Waiver
    where: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.waiver.finding, self.waiver.item)
