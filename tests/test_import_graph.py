"""The house shows the flow: imports point down it and never go round in a circle.

Read from the source (every import statement, lazy and ``TYPE_CHECKING`` ones included), not
from what happens to be imported at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The engine and everything below it: nothing here may reach up into the orchestration
# (the eod batch, the backtest, what-if, liquidation), the report layer or the CLI.
ENGINE = ("riskmodel.errors", "riskmodel.validation", "riskmodel.config", "riskmodel.io",
          "riskmodel.marketdata", "riskmodel.volatility", "riskmodel.scenarios",
          "riskmodel.pricing", "riskmodel.portfolio", "riskmodel.measures", "riskmodel.margin",
          "riskmodel.engine")
ABOVE = ("riskmodel.batch", "riskmodel.backtest", "riskmodel.whatif", "riskmodel.liquidation",
         "riskmodel.report", "riskmodel.cli", "riskmodel.demo", "calibration")


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] in ("riskmodel", "calibration")}


def _graph() -> dict[str, set[str]]:
    files = [*(ROOT / "riskmodel").rglob("*.py"), *(ROOT / "calibration").rglob("*.py")]
    return {_module(p): _imports(p) for p in files}


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_engine_never_imports_the_layers_above_it():
    bad = sorted((m, d) for m, deps in _graph().items() if _within(m, ENGINE)
                 for d in deps if _within(d, ABOVE))
    assert not bad, f"imports up the flow: {bad}"


def test_riskmodel_never_imports_calibration_but_through_the_cli():
    bad = sorted((m, d) for m, deps in _graph().items()
                 if m.startswith("riskmodel") and not _within(m, ("riskmodel.cli",))
                 for d in deps if d.startswith("calibration"))
    assert not bad, f"riskmodel imports calibration: {bad}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules_or_packages():
    graph = _graph()
    assert _cycles(graph) == []

    def package(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:2]) if parts[0] == "riskmodel" and len(parts) > 1 else parts[0]

    packages: dict[str, set[str]] = {}
    for m, deps in graph.items():
        packages.setdefault(package(m), set()).update(
            package(d) for d in deps if package(d) != package(m))
    packages.pop("riskmodel", None)  # the package root only holds the version
    assert _cycles(packages) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
