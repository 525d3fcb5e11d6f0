"""numba's cache of riskmodel's kernels is keyed by the whole package's source
(:mod:`riskmodel.kernel_cache`): a kernel never runs the stale code of a kernel of another
file."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from riskmodel import kernel_cache
from riskmodel.measures import losses

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "riskmodel"


def _write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def _callee(folder: Path, value: int) -> None:
    _write(folder / "callee.py", f"""
        from riskmodel.kernel_cache import stamp_package, njit
        stamp_package(__import__("os").path.dirname(__file__))

        @njit(cache=True)
        def g():
            return {value}
        """)


def _run(root: Path) -> str:
    code = "from pk.caller import f; print(f())"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_a_changed_callee_in_another_file_recompiles_its_caller(tmp_path):
    # numba alone keys f's cache entry by caller.py only, and would print 10 the second time
    folder = tmp_path / "pk"
    folder.mkdir()
    _write(folder / "__init__.py", "")
    _write(folder / "caller.py", """
        from riskmodel.kernel_cache import stamp_package, njit
        stamp_package(__import__("os").path.dirname(__file__))
        from pk.callee import g

        @njit(cache=True)
        def f():
            return g() * 10
        """)
    _callee(folder, 1)
    assert _run(tmp_path) == "10"
    assert list((folder / "__pycache__").glob("caller.f-*.nbi"))  # f was cached
    _callee(folder, 2)
    assert _run(tmp_path) == "20"
    assert _run(tmp_path) == "20"  # and cached again under the new stamp


def test_riskmodel_kernels_are_cached_under_the_package_stamp():
    stamp = losses.accumulate_loss._cache._cache_file._source_stamp
    assert stamp[1] == kernel_cache.package_stamp(PACKAGE.resolve())


def test_the_package_stamp_covers_every_python_file(tmp_path):
    folder = tmp_path / "pkg"
    (folder / "sub").mkdir(parents=True)
    _write(folder / "a.py", "A = 1\n")
    _write(folder / "sub" / "b.py", "B = 1\n")
    kernel_cache._PACKAGES.pop(folder, None)
    before = kernel_cache.package_stamp(folder)
    kernel_cache._PACKAGES.pop(folder)
    _write(folder / "sub" / "b.py", "B = 2\n")
    assert kernel_cache.package_stamp(folder) != before
    kernel_cache._PACKAGES.pop(folder)


def test_every_riskmodel_kernel_module_takes_njit_from_kernel_cache():
    """A module taking ``njit`` from numba would define kernels keyed by its own file only."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "kernel_cache.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "numba":
                bad += [f"{path.relative_to(ROOT)}: from numba import {a.name}"
                        for a in node.names if a.name in ("njit", "jit")]
            elif (isinstance(node, ast.Attribute) and node.attr in ("njit", "jit")
                  and isinstance(node.value, ast.Name) and node.value.id == "numba"):
                bad.append(f"{path.relative_to(ROOT)}: numba.{node.attr}")
    assert not bad, bad
