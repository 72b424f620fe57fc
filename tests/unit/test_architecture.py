"""The shape of the package, checked: the one-way flow ../shared/STYLE.md describes holds in the tree.

Read from the source (ast), so a new module or import is judged the day it lands: no module over
500 lines, no import cycle (imports inside functions count), each adapter imported only by its wing,
the library Prefect-free, and every wing saying what it owns and may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
WINGS = ("plan", "precheck", "cutover", "steps", "ansible", "providers", "planning", "discovery", "orchestration",
         "cli", "lab")  # fmt: skip
PREFECT_FREE = ("plan", "precheck", "cutover", "steps", "ansible", "providers", "planning", "discovery")
# A plan's credentials reference may name a Prefect Secret block: the one place the library reads Prefect,
# lazily, and only for a plan that asks for it.
PREFECT_ALLOWED = {"overflyt.plan.credentials"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root, top in ((SRC, "overflyt"), (REPO, "flows")):
        for path in sorted((root / top).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: frozenset[str] = frozenset()) -> set[str]:
    """Every module ``path`` imports, anywhere in it, except under ``if TYPE_CHECKING:`` (``known``:
    the project's own modules, to tell ``from pkg import module`` from ``from pkg import name``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` depends on pkg.mod (a module) or on pkg (a name defined in it)
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}  # fmt: skip
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = frozenset(mods)
    return {name: {m for m in imports(path, known) if m in mods and m != name} for name, path in mods.items()}


def test_no_module_is_over_500_lines() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 500}
    assert not long, f"modules doing more than one job (over 500 lines): {long}"


def test_no_import_cycle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("library", "owner"),
    [("ansible_runner", "overflyt.ansible.runner"), ("pyVmomi", "overflyt.providers.vsphere"),
     ("pyVim", "overflyt.providers.vsphere")],
)  # fmt: skip
def test_each_adapter_is_imported_by_its_wing_only(library: str, owner: str) -> None:
    users = {n for n, p in modules().items() if any(m.split(".")[0] == library for m in imports(p))}
    assert users, f"nothing imports {library}: the check would prove nothing"
    assert {u for u in users if not u.startswith(owner)} == set(), f"{library} imported outside {owner}"


def test_the_library_never_imports_prefect() -> None:
    users = {
        name
        for name, path in modules().items()
        if name.split(".")[1:2] and name.split(".")[1] in PREFECT_FREE
        if any(m.split(".")[0] == "prefect" for m in imports(path))
    }
    assert users - PREFECT_ALLOWED == set(), f"Prefect imported by the library: {sorted(users - PREFECT_ALLOWED)}"
    flows = {
        n for n, p in modules().items() if n.startswith("flows") and any(m.startswith("prefect") for m in imports(p))
    }
    assert flows, "the flows import Prefect: the check above reads imports correctly"


def test_every_wing_says_what_it_owns_and_may_import() -> None:
    for wing in WINGS:
        init = SRC / "overflyt" / wing / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"overflyt.{wing} has no docstring saying what it owns"
    for name in ("plan", "precheck", "cutover", "steps", "ansible", "planning", "discovery", "orchestration"):
        doc = ast.get_docstring(ast.parse((SRC / "overflyt" / name / "__init__.py").read_text())) or ""
        assert "import" in doc, f"overflyt.{name}'s docstring does not say what it may import"
