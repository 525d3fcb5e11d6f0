"""Numbers as people read them: thousands separators, units, percentages, signs, p-values.

Every page formats through these functions (they are also the templates' filters), so an
amount, a share or a move reads the same everywhere. Missing values (None, NaN) print as an em
dash; infinities as words (``none``), since the only infinity in the outputs means "no move
liquidates".
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["amount", "count", "date", "money", "number", "pct", "pvalue", "short_amount",
           "signed_amount", "signed_pct"]

DASH = "—"


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _missing(value: Any) -> str:
    """What a value that is not a finite number prints as."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return DASH
    if math.isinf(v):
        return "none" if v > 0 else "-none"
    return DASH


def count(value: Any) -> str:
    """An integer count with thousands separators: ``1,234,567``."""
    v = _finite(value)
    return _missing(value) if v is None else f"{round(v):,d}"


def amount(value: Any, digits: int = 0) -> str:
    """An amount with thousands separators and ``digits`` decimals: ``17,804,138``.

    Amounts below 1 in magnitude (but not 0) keep three significant digits, so a small margin
    on a unit position does not print as 0.
    """
    v = _finite(value)
    if v is None:
        return _missing(value)
    if v != 0 and abs(v) < 1 and digits == 0:
        return f"{v:.3g}"
    return f"{v:,.{digits}f}"


def signed_amount(value: Any, digits: int = 0) -> str:
    """An amount with its sign: ``+1,234``, ``-56``, ``0``."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    text = amount(v, digits)
    return text if v <= 0 or text.startswith("-") else "+" + text


def money(value: Any, unit: str = "USD", digits: int = 0) -> str:
    """An amount and its unit: ``17,804,138 USD``."""
    text = amount(value, digits)
    return text if text == DASH else f"{text} {unit}".rstrip()


_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def short_amount(value: Any, unit: str = "USD") -> str:
    """An amount in words for a sentence: ``17.8 million USD``, ``950 USD``."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    for scale, word in _SCALES[:3]:
        if abs(v) >= scale * 0.9995:  # 999,600 reads as 1 million, not 1e+03 thousand
            q = v / scale
            text = f"{q:.3g}" if abs(q) < 999.5 else f"{q:,.0f}"
            return f"{text} {word} {unit}".rstrip()
    return money(v, unit)


def number(value: Any, sig: int = 4) -> str:
    """A number to ``sig`` significant digits, with thousands separators when large:
    ``0.01874``, ``2,507``, ``1.2e-07``."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    if v == 0:
        return "0"
    if abs(v) >= 10 ** (sig - 1):
        return f"{v:,.0f}"
    if abs(v) < 1e-4:
        return f"{v:.{sig - 1}e}"
    digits = max(0, sig - 1 - math.floor(math.log10(abs(v))))
    return f"{v:,.{digits}f}"


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage: ``0.515 -> 51.5%``; shares too small for ``digits`` decimals
    keep two significant digits (``0.00012 -> 0.012%``)."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    p = 100.0 * v
    if p != 0 and abs(p) < 10.0 ** -digits:
        return f"{p:.2g}%"
    return f"{p:,.{digits}f}%"


def signed_pct(value: Any, digits: int = 1) -> str:
    """A relative move or change with its sign: ``0.025000000000000022 -> +2.5%``,
    ``-0.5 -> -50.0%``, ``0 -> 0.0%``."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    text = pct(v, digits)
    return text if text.startswith("-") or float(text.rstrip("%").replace(",", "")) == 0 \
        else "+" + text


def pvalue(value: Any) -> str:
    """A p-value: three significant digits; an exact 0 is an underflow, ``< 1e-300``."""
    v = _finite(value)
    if v is None:
        return _missing(value)
    if v == 0:
        return "< 1e-300"
    return f"{v:.3g}"


def date(value: Any) -> str:
    """The date part of an ISO timestamp or a pandas/datetime value: ``2018-12-31``."""
    if value is None:
        return DASH
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:10]
