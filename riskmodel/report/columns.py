"""Every table column a page shows, named and formatted once: an amount, a share or a p-value
reads the same on every page.

:func:`columns` returns the :class:`~riskmodel.report.page.Column` of each key, in order, with
the page's own header where it gives one. The table below is the registry: key, header,
format (:data:`FORMATS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from riskmodel.report import formats as f
from riskmodel.report.page import Column

__all__ = ["COLUMNS", "FORMATS", "columns"]

# format name -> (formatter, right-aligned)
FORMATS: dict[str, tuple[Callable[[Any], str], bool]] = {
    "text": (str, False),
    "preformatted": (str, True),  # a number the page formatted itself (units vary by row)
    "count": (f.count, True),
    "amount": (f.amount, True),
    "signed_amount": (f.signed_amount, True),
    "pct": (f.pct, True),
    "pct2": (lambda v: f.pct(v, 2), True),
    "signed_pct": (f.signed_pct, True),
    "signed_pct2": (lambda v: f.signed_pct(v, 2), True),
    "number": (f.number, True),
    "number3": (lambda v: f.number(v, 3), True),
    "number6": (lambda v: f.number(v, 6), True),
    "pvalue": (f.pvalue, True),
    "times": (lambda v: f"{f.number(v, 3)} x", True),
}

_REGISTRY = """
account_id | account | text
netting_set | netting set | text
instrument_id | instrument | text
status | status | text
set_status | set status | text
sets | netting sets | count
share | share | pct
positions | positions | count
initial_margin | initial margin | amount
initial_margin_before | IM then | amount
maintenance_margin | maintenance margin | amount
equity | equity | amount
flat_rate_margin | flat-rate margin | amount
gross_notional | gross notional | amount
notional | notional | amount
call_amount | margin call | amount
liquidation_penalty | liquidation penalties | amount
im_over_flat | IM / flat | pct
im_over_gross | IM / gross notional | pct2
margin_level | margin level | number3
dominant_underlying | dominant underlying | text
liq_move_dominant | move to liquidation | signed_pct
liq_sigmas_dominant | in daily sigmas | number3
contribution | Euler contribution | amount
set_model_margin | set's model margin | amount
scenario | worst scenario | text
stress_loss | their stress loss | amount
above_im | of them losing more than IM | count
quantity_to_close | quantity to close | number6
margin_after | initial margin after | amount
equity_after | equity after | amount
part | part | text
change | change | signed_amount
reason | why | text
asset | factor | text
price_before | price then | number
price | price | number
price_change | price change | signed_pct
sigma_before | daily vol then | preformatted
sigma_1d | daily vol now | preformatted
sigma_change | vol change | signed_pct
share_of_total | share of all contributions | pct
period | period | text
n_obs | obs. | count
exceptions | VaR exceptions | count
exception_rate | exception rate | pct2
kupiec_pvalue | Kupiec p | pvalue
christoffersen_pvalue | Christoffersen p | pvalue
traffic_light | traffic light | text
es_z2 | ES Z2 | number3
margin_breaches | margin breaches | count
margin_breach_rate | breach rate | pct2
mean_margin | mean IM | number
mean_initial_margin | mean IM | number
flat_rate_equivalent | flat rate at equal coverage | pct2
peak_to_trough | peak / trough | number3
point | point | count
frontier | on the frontier | text
scope | scope | text
move | move | signed_pct
n_margin_call | in margin call | count
n_liquidation | in liquidation | count
new_margin_call | new margin calls | count
new_liquidation | new liquidations | count
notional_liquidated | notional liquidated | amount
penalties | penalties | amount
rounds | rounds | count
liquidated_initial | liquidated before | count
liquidated_final | liquidated after | count
extra_liquidations | extra liquidations | count
"""


def _registry() -> dict[str, Column]:
    out = {}
    for line in _REGISTRY.strip().splitlines():
        key, header, fmt = (part.strip() for part in line.split("|"))
        out[key] = Column(key, header, *FORMATS[fmt])
    return out


COLUMNS = _registry()


def columns(*keys: str, headers: dict[str, str] | None = None) -> list[Column]:
    """The registered columns of ``keys``, in order; ``headers`` renames some for one page.

    Raises
    ------
    KeyError
        For a key the registry does not hold (add it above: one name, one format).
    """
    renamed = headers or {}
    out = []
    for key in keys:
        column = COLUMNS[key]
        out.append(Column(key, renamed.get(key, column.header), column.format, column.numeric))
    return out
