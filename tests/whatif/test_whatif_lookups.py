"""The what-if's per-query lookups: a ticket's deposits summed per set, and each set's
collateral and previous margin looked up in a dictionary for small books, equal to the
vectorised paths of larger books."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.portfolio.collateral import (
    SMALL_BOOK,
    CollateralTable,
    PreviousMargins,
    previous_margins,
)
from riskmodel.whatif.trades import _sums


def test_deposits_sum_as_pandas_groupby_does():
    # hand-worked: 1e16 + 1 rounds back to 1e16 twice in a plain sum; the compensated sum
    # keeps the two units (1e16 + 2 is representable)
    assert _sums(np.array([1e16, 1.0, 1.0]), [0, 0, 0], 1).tolist() == [1e16 + 2.0]
    assert 1e16 + 1.0 + 1.0 == 1e16
    # reference: pandas' groupby sum, on values with cancellations of every size
    rng = np.random.default_rng(7)
    values = rng.standard_normal(300) * 10.0 ** rng.integers(-3, 17, 300)
    values[::11] = np.inf * np.sign(values[::11])
    group = rng.integers(0, 9, 300)
    finite = ~np.isinf(values)
    for v, g in ((values[finite], group[finite]), (values, group)):
        want = pd.Series(v).groupby(g).sum().reindex(range(9), fill_value=0.0)
        got = _sums(v, g.tolist(), 9)
        np.testing.assert_array_equal(got, want.to_numpy())


def _keys(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"account_id": [f"A{i:03d}" for i in rng.integers(0, 120, n)],
                         "netting_set": rng.choice(["default", "iso-X", "iso-Y"], n)})


def test_collateral_of_a_few_sets_is_the_tables_lookup():
    rng = np.random.default_rng(1)
    table = _keys(400, rng).drop_duplicates(ignore_index=True)
    table["collateral"] = rng.uniform(-1e3, 1e6, len(table))
    collateral = CollateralTable(table)
    sets = _keys(5 * SMALL_BOOK, rng)  # a quarter have no row of their own: 0
    # reference: a plain dictionary of the table
    by_key = dict(zip(zip(table["account_id"], table["netting_set"]), table["collateral"]))
    want = np.array([by_key.get(k, 0.0) for k in zip(sets["account_id"], sets["netting_set"])])
    large = collateral.of_sets(sets)
    np.testing.assert_array_equal(large, want)
    assert (want == 0.0).any() and (want != 0.0).any()
    for start in range(0, len(sets), 16):  # small books: one lookup per set
        part = sets.iloc[start:start + 16]
        np.testing.assert_array_equal(collateral.of_sets(part), large[start:start + 16])
    np.testing.assert_array_equal(collateral.of_keys([("nobody", "default")]), [0.0])


def test_previous_margin_of_a_few_sets_is_the_merge():
    rng = np.random.default_rng(2)
    previous = _keys(300, rng).drop_duplicates(ignore_index=True)
    previous["model_margin"] = rng.uniform(0.0, 1e5, len(previous))
    lookup = PreviousMargins(previous)
    sets = _keys(3 * SMALL_BOOK, rng)
    want = previous_margins(previous, sets)
    assert want is not None and np.isnan(want).any()
    np.testing.assert_array_equal(lookup.of_sets(sets), want)
    for start in range(0, len(sets), 7):
        part = sets.iloc[start:start + 7].reset_index(drop=True)
        np.testing.assert_array_equal(lookup.of_sets(part), previous_margins(previous, part))
