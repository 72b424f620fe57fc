"""The plan: load it, validate it, look at it. Only :mod:`overflyt.plan.loader` reads plan files."""

from overflyt.plan.loader import Inventory, load_inventory, load_plan
from overflyt.plan.model import Plan
from overflyt.plan.rules import Problem, validate_plan

__all__ = ["Inventory", "Plan", "Problem", "load_inventory", "load_plan", "validate_plan"]
