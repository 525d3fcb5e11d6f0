"""`riskmodel scenarios` writes exactly the scenarios an eod run uses."""

import json

import numpy as np
import pyarrow.parquet as pq

from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.cli import garch_fitter, main
from riskmodel.config import load_config
from riskmodel.demo import write_demo_inputs


def test_export_equals_the_run_scenarios(tmp_path):
    files = write_demo_inputs(tmp_path / "in", n_accounts=20)
    out = tmp_path / "scen.parquet"
    assert main(["scenarios", "--prices", str(files.prices), "--out", str(out), "--config",
                 str(files.config), "--stress", "--horizon", "3", "--quiet"]) == 0
    config = load_config(files.config, {"horizon": 3})
    run = run_eod(EodInputs(files.prices, files.instruments, files.positions, files.accounts),
                  config, fitter=garch_fitter())
    table = pq.read_table(out)
    frame = table.to_pandas()
    model = frame[frame["set"] == "model"]
    used = list(run.scenarios.factors)
    np.testing.assert_array_equal(model[used].to_numpy(), run.scenarios.shocks)
    np.testing.assert_allclose(model["weight"].sum(), 1.0)
    assert list(model["label"]) == list(run.scenarios.labels)
    stress = frame[frame["set"] == "stress"]
    assert (stress["kind"] == "stress-historical").all() and len(stress) > 0
    assert stress["label"].str.startswith("gfc-2008-10:").any()
    meta = json.loads(table.schema.metadata[b"riskmodel"])
    assert meta["horizon_days"] == 3 and meta["config_sha256"] == config.digest()


def test_export_rejects_unknown_factor(tmp_path, capsys):
    files = write_demo_inputs(tmp_path / "in", n_accounts=5)
    rc = main(["scenarios", "--prices", str(files.prices), "--out", str(tmp_path / "s.parquet"),
               "--factors", "SPX,GOLD", "--method", "hs"])
    assert rc == 3 and "GOLD" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_export_needs_parquet(tmp_path, capsys):
    files = write_demo_inputs(tmp_path / "in", n_accounts=5)
    assert main(["scenarios", "--prices", str(files.prices), "--out",
                 str(tmp_path / "s.csv"), "--method", "hs"]) == 2
    assert ".parquet" in capsys.readouterr().err
