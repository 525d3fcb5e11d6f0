"""numba's on-disk cache of riskmodel's kernels, keyed by the whole package's source.

numba keys a cached kernel by the source of the one file that defines it. A kernel compiled
with calls into kernels of other files carries their code, as compiled then, in its cache
entry, and numba does not notice when those files change (a limitation its documentation
lists): after an upgrade in place or an edit, a kernel would load and run the old code of the
kernels it calls, and give the old version's numbers without a word. Here the kernels of the
packages registered with :func:`stamp_package` (riskmodel's own, on import) are cached under a
stamp of every Python file of their package as well: any change to the package recompiles them
all once, and a kernel never runs another file's stale code.

Every riskmodel module that defines kernels takes ``njit`` from here, so the stamp is in place
before its first kernel is defined (a test checks it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from numba import njit
from numba.core import caching

__all__ = ["njit", "package_stamp", "stamp_package"]

_PACKAGES: dict[Path, bytes | None] = {}  # package folder -> its stamp, computed when first asked


def package_stamp(folder: Path) -> bytes:
    """SHA-256 of the relative path and bytes of every ``.py`` file under ``folder``
    (computed once per process: 5 ms for riskmodel's 1.5 MB)."""
    stamp = _PACKAGES.get(folder)
    if stamp is None:
        digest = hashlib.sha256()
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
        stamp = _PACKAGES[folder] = digest.digest()
    return stamp


def _package_of(py_file: str | None) -> Path | None:
    if py_file is None:
        return None
    path = Path(py_file).resolve()
    return next((folder for folder in _PACKAGES if folder in path.parents), None)


def _stamped(locator: type) -> type:
    """``locator`` with the stamp of its file's package added to the file's own."""

    class Stamped(locator):  # type: ignore[misc, valid-type]
        def get_source_stamp(self) -> Any:
            own = super().get_source_stamp()
            folder = _package_of(getattr(self, "_py_file", None))
            return own if folder is None else (own, package_stamp(folder))

    Stamped.__name__ = Stamped.__qualname__ = f"PackageStamped{locator.__name__}"
    return Stamped


def stamp_package(folder: str | Path) -> None:
    """Key the cache of every kernel defined under ``folder`` by all its ``.py`` files too
    (module docstring); numba's cache locators are wrapped once per process."""
    _PACKAGES.setdefault(Path(folder).resolve(), None)
    # CacheImpl since numba 0.61, _CacheImpl before
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # type: ignore[attr-defined]
    if not getattr(impl, "_package_stamped", False):
        impl._locator_classes = [_stamped(c) for c in impl._locator_classes]
        impl._package_stamped = True


stamp_package(Path(__file__).resolve().parent)
