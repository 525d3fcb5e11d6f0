"""One TOML table of ``RUN.toml`` read with its allowed keys: what every section builder (and
the nested tables of ``[grid]`` and ``[tiers]``) starts from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskmodel.errors import UsageError


def section(raw: Mapping[str, Any], name: str, allowed: set[str], source: str) -> dict[str, Any]:
    """``raw[name]`` as a dict ({} when absent); not a table, or a key not in ``allowed``, is a
    usage error naming ``[name]`` or ``name.key`` and ``source``."""
    table = raw.get(name, {})
    if not isinstance(table, Mapping):
        raise UsageError(f"{source}: [{name}] must be a table")
    for key in table:
        if key not in allowed:
            raise UsageError(f"{source}: unknown key {name}.{key}")
    return dict(table)
