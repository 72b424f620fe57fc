"""The plan: load it, validate it, look at it, resolve its credentials.

Owns: :mod:`.model` (the plan's schema), :mod:`.loader` (the only reader of plan and inventory files;
``load`` returns a :class:`LoadedPlan`), :mod:`.ansible_inventory` (the inventory beside a plan
as Ansible itself reads it: layouts, precedence, vault), :mod:`.rules` (cross-field rules),
:mod:`.names` (what a VM name may be; its alias), :mod:`.select` (which wave and sites a command works on),
:mod:`.credentials` (credentials references resolved at run time), :mod:`.waivers` (the accepted
pre-check findings of ``waivers.yml`` beside the plan; read by the loader: ``LoadedPlan.waivers``).
May import: ``overflyt.errors``, ``overflyt.project``. Contacts nothing.
"""

from overflyt.plan.loader import Inventory, LoadedPlan, load, load_inventory, load_plan
from overflyt.plan.model import Plan
from overflyt.plan.rules import Problem, validate_plan

__all__ = ["Inventory", "LoadedPlan", "Plan", "Problem", "load", "load_inventory", "load_plan", "validate_plan"]
