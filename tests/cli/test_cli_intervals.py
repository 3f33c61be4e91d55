"""`deepcast run --levels ... --intervals ...`: scored intervals in metrics.json, recomputed
from the saved model, and one clear line for a method the model cannot give."""

import json

import numpy as np
import pandas as pd
import pytest

import deepcast as dc

from .conftest import run_cli

FAST = ["--lookback", "24", "--units", "8", "--layers", "1", "--epochs", "2"]


def test_default_run_scores_conformal_intervals_that_the_saved_model_reproduces(
    csv_file, tmp_path, capsys
):
    out = tmp_path / "run"
    code, _, _ = run_cli(
        ["run", "--data", str(csv_file), "--target", "y", "--out", str(out), *FAST], capsys
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["intervals"]["method"] == "conformal"
    assert 0.0 <= metrics["coverage_80"] <= metrics["coverage_95"] <= 1.0
    assert 0.0 < metrics["width_80"] < metrics["width_95"]
    # Recomputed by hand from the saved model: its calibration scores and its forecasts.
    model = dc.load(out / "model")
    df = pd.read_csv(csv_file, index_col=0, parse_dates=True)
    rows = metrics["data"]["rows"]
    history, test = df.iloc[: rows["train"] + rows["validation"]], df.iloc[-rows["test"] :]
    point = model.predict(pd.concat([history.iloc[-24:], test])).to_numpy()[:-1, 0]
    actual = test["y"].to_numpy()
    scores = np.sort(model.conformal_.scores[:, 0])
    q = scores[int(np.ceil((len(scores) + 1) * 0.8)) - 1]
    covered = np.mean(np.abs(actual - point) <= q)
    assert metrics["coverage_80"] == pytest.approx(covered, abs=1e-9)
    assert metrics["width_80"] == pytest.approx(2 * q, rel=1e-6)
    baseline = metrics["intervals"]["baselines"]["seasonal_naive"]
    assert {"coverage_80", "width_80", "winkler_80", "pinball", "crps"} <= set(baseline)


def test_quantile_intervals_train_the_quantiles_the_levels_need(csv_file, tmp_path, capsys):
    out = tmp_path / "q"
    args = ["run", "--data", str(csv_file), "--target", "y", "--out", str(out), *FAST]
    code, _, err = run_cli([*args, "--intervals", "quantile", "--levels", "80,95"], capsys)
    assert code == 0, err
    model = dc.load(out / "model")
    assert model.loss == "quantile"
    assert model.head.quantiles == (0.025, 0.1, 0.5, 0.9, 0.975)
    assert json.loads((out / "metrics.json").read_text())["intervals"]["method"] == "quantile"


def test_points_only_and_bad_methods_are_one_line(csv_file, tmp_path, capsys):
    args = ["run", "--data", str(csv_file), "--target", "y", *FAST]
    code, _, _ = run_cli([*args, "--out", str(tmp_path / "p"), "--levels", "none"], capsys)
    assert code == 0
    assert "coverage_80" not in json.loads((tmp_path / "p" / "metrics.json").read_text())
    linear = ["run", "--data", str(csv_file), "--target", "y", "--lookback", "24", "--epochs", "2"]
    code, _, err = run_cli(
        [*linear, "--out", str(tmp_path / "m"), "--model", "nlinear", "--intervals", "mc_dropout"],
        capsys,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "dropout" in err
    code, _, err = run_cli([*args, "--out", str(tmp_path / "l"), "--levels", "80,abc"], capsys)
    assert code == 2 and "--levels" in err
    code, _, err = run_cli([*args, "--out", str(tmp_path / "x"), "--levels", "100"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
