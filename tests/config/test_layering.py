"""Configuration is a value the engine reads: it imports nothing of the margin code.

Read from the source (every ``import``, also inside functions and ``if TYPE_CHECKING:``), so a
lazy import that would close a circle is caught before it is ever run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("riskmodel", "calibration")
# Modules the configuration may import: the exceptions, the validators and itself.
CONFIG_MAY_IMPORT = ("riskmodel.errors", "riskmodel.validation", "riskmodel.config")
# The modules that the configuration, the validators and the add-on settings touch.
LAYERED = ("riskmodel.config", "riskmodel.validation", "riskmodel.errors",
           "riskmodel.margin.addons", "riskmodel.margin.policy", "riskmodel.volatility.params",
           "calibration.estimate")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every module name ``path`` imports (relative imports resolved), and for ``from m import
    x`` also ``m.x`` (x may be a submodule)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def source_files() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def config_files() -> list[Path]:
    return sorted(p for p in (ROOT / "riskmodel").glob("config*")
                  if p.suffix == ".py") + sorted((ROOT / "riskmodel").glob("config*/**/*.py"))


def test_config_imports_nothing_of_margin():
    files = config_files()
    assert files, "no riskmodel/config* found"
    for path in files:
        for name in imported_names(path):
            if name == "riskmodel" or name.startswith("riskmodel."):
                assert not name.startswith("riskmodel.margin"), f"{path}: imports {name}"
                assert name.startswith(CONFIG_MAY_IMPORT), f"{path}: imports {name}"


def test_validation_imports_nothing_but_errors():
    names = imported_names(ROOT / "riskmodel" / "validation.py")
    assert {n for n in names if n.startswith("riskmodel")} == {"riskmodel.errors",
                                                                "riskmodel.errors.UsageError"}


def test_no_import_cycle_through_the_configuration():
    """No circle of imports (strongly connected modules) passes through a layered module."""
    files = source_files()
    graph = {m: {n for n in imported_names(p) if n in files and n != m}
             for m, p in files.items()}
    for component in strongly_connected(graph):
        touched = [m for m in component if m.startswith(LAYERED)]
        assert len(component) == 1 or not touched, f"import cycle: {sorted(component)}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a deep package graph would exhaust the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_the_cycle_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected(graph))) == [["a", "b", "c"], ["d"]]


def test_addon_settings_are_the_configuration_s():
    """The settings moved to the configuration; the margin module still offers them."""
    from riskmodel.config import AddonConfigError, AddonPolicy, ThresholdTable
    from riskmodel.margin import addons

    assert addons.AddonPolicy is AddonPolicy
    assert addons.ThresholdTable is ThresholdTable
    assert addons.AddonConfigError is AddonConfigError
