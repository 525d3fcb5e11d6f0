"""SVI smiles: the raw-SVI formula worked by hand, the wing clamp, and the smile file's checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskmodel.errors import InputDataError
from riskmodel.io.svi import load_svi
from riskmodel.pricing.svi import svi_vol

# a = 0.04, b = 0.4, rho = -0.4, m = 0.1, sigma = 0.2, half a year to expiry, forward 100
SMILE = dict(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.2)


def _hand(k: float) -> float:
    d = k - 0.1
    return math.sqrt((0.04 + 0.4 * (-0.4 * d + math.sqrt(d * d + 0.04))) / 0.5)


def test_raw_svi_by_hand():
    strikes = np.array([70.0, 90.0, 100.0, 125.0])
    got = svi_vol(strikes, 100.0, 0.5, **SMILE)
    np.testing.assert_allclose(got, [_hand(math.log(k / 100)) for k in strikes], rtol=1e-14)


def test_wings_are_clamped_to_the_smiles_width():
    bound = 4.0 * math.sqrt(0.04 + 0.4 * 0.2)  # log-moneyness 1.386
    far = svi_vol(np.array([100 * math.exp(3.0), 100 * math.exp(-3.0), 0.0]), 100.0, 0.5,
                  **SMILE)
    assert far[0] == pytest.approx(_hand(bound), rel=1e-14)
    assert far[1] == pytest.approx(_hand(-bound), rel=1e-14)
    assert far[2] == 0.0  # a strike of zero has no vol
    capped = svi_vol(100.0, 100.0, 0.01, a=30.0, b=0.1, rho=0.0, m=0.0, sigma=0.1)
    assert capped == pytest.approx(math.sqrt(25.0 / 0.01))  # total variance capped at 25


def test_not_a_variance_is_refused():
    with pytest.raises(ValueError):
        svi_vol(100.0, 100.0, 0.5, a=-0.2, b=0.1, rho=0.0, m=0.0, sigma=0.1)


def test_smile_file_rows_are_checked(tmp_path):
    rows = pd.DataFrame({"underlying": ["BTC", "BTC"],
                         "expiry": ["2024-03-29T08:00:00Z", "2024-06-28T08:00:00Z"],
                         **{k: [v, v] for k, v in SMILE.items()}})
    good = tmp_path / "svi.csv"
    rows.to_csv(good, index=False)
    loaded = load_svi(good).frame
    assert len(loaded) == 2 and loaded["forward"].isna().all()
    bad = rows.assign(rho=[-0.4, 1.5])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputDataError, match=r"bad\.csv line 3, column 'rho'.*1\.5"):
        load_svi(tmp_path / "bad.csv")
    rows.iloc[[0, 0]].to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(InputDataError, match="line 3, column 'expiry'.*a second smile"):
        load_svi(tmp_path / "twice.csv")
