"""Numbers for people: each expected string worked out by hand from the value."""

import math

import pytest

from riskmodel.report import formats as f


@pytest.mark.parametrize("func, value, expected", [
    (f.count, 1234567, "1,234,567"),
    (f.count, 0, "0"),
    (f.amount, 17804137.95, "17,804,138"),
    (f.amount, -56.4, "-56"),
    (f.amount, 0.5, "0.5"),              # below 1: three significant digits, not "0"
    (f.signed_amount, 1234.0, "+1,234"),
    (f.signed_amount, -1234.0, "-1,234"),
    (f.money, 33252.78, "33,253 USD"),
    (f.short_amount, 17804137.95, "17.8 million USD"),
    (f.short_amount, 999_600.0, "1 million USD"),   # not "1e+03 thousand"
    (f.short_amount, 950.2, "950 USD"),
    (f.short_amount, -2.5e9, "-2.5 billion USD"),
    (f.pct, 0.51496, "51.5%"),
    (f.pct, 0.00012, "0.012%"),          # too small for one decimal: two significant digits
    (f.signed_pct, 0.025000000000000022, "+2.5%"),  # the liquidation map's linspace move
    (f.signed_pct, -0.5, "-50.0%"),
    (f.signed_pct, 0.0, "0.0%"),
    (f.number, 0.0187378, "0.01874"),
    (f.number, 2506.85, "2,507"),
    (f.number, 25.42, "25.42"),
    (f.pvalue, 0.0061234, "0.00612"),
    (f.pvalue, 0.0, "< 1e-300"),
    (f.date, "2018-12-31T00:00:00", "2018-12-31"),
])
def test_formats(func, value, expected):
    assert func(value) == expected


def test_missing_and_infinite_values():
    for func in (f.count, f.amount, f.pct, f.signed_pct, f.number, f.pvalue, f.money):
        assert func(None) == f.DASH and func(math.nan) == f.DASH
    # the outputs' only infinity: no move liquidates
    assert f.signed_pct(math.inf) == "none" and f.amount(math.inf) == "none"
