"""The run's guard (model vs baselines on validation) and `model="auto"`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import huber
from sklearn.metrics import mean_absolute_error

import deepcast as dc
from deepcast.cli import main
from deepcast.evaluation.guard import validation_check
from deepcast.selection import select_model


def test_the_check_scores_model_and_baselines_on_the_same_windows(fitted, small_parts):
    """Recomputed independently: scaled validation targets and forecasts, scipy's Huber
    (delta 1: the default LSTM's training loss)."""
    train, val, _ = small_parts
    check = fitted.validation_check_
    frame = pd.concat([fitted._frame(train, "t"), fitted._frame(val, "v")])
    scaled = fitted.scaler_.transform(frame.to_numpy())
    n_train, lookback, horizon = len(train), fitted.lookback, fitted.horizon
    origins = np.arange(n_train - 1, len(frame) - horizon)
    x = np.stack([scaled[o - lookback + 1 : o + 1] for o in origins])
    y = np.stack([scaled[o + 1 : o + 1 + horizon, 0] for o in origins])
    model = keras_predict(fitted, x)
    assert check.windows == len(origins)
    assert check.loss == "huber"
    assert check.model == pytest.approx(huber(1.0, model - y).mean(), rel=1e-4)
    naive = np.repeat(scaled[origins, :1], horizon, axis=1)
    assert check.baselines["naive"] == pytest.approx(huber(1.0, naive - y).mean(), rel=1e-6)
    ridge = fitted.linear_baseline_.predict(x)
    assert check.baselines["linear"] == pytest.approx(huber(1.0, ridge - y).mean(), rel=1e-5)


def keras_predict(forecaster, x):
    import keras

    return keras.ops.convert_to_numpy(forecaster.model(x.astype("float32")))


def test_lost_means_worse_than_the_best_baseline_beyond_float_noise():
    actual = np.zeros((4, 2))
    forecasts = {"model": np.full((4, 2), 1.0), "naive": np.full((4, 2), 0.5)}
    check = validation_check({**forecasts, "linear": np.full((4, 2), 2.0)}, actual, "mae")
    assert check.lost and check.best_baseline == "naive"
    assert check.model == mean_absolute_error(actual, forecasts["model"])
    assert "worse than the best baseline (naive" in check.message("lstm")
    same = validation_check({**forecasts, "model": forecasts["naive"]}, actual, "mse")
    assert not same.lost  # a model equal to its best baseline has not lost to it


@pytest.fixture(scope="module")
def selection(small_parts):
    train, val, _ = small_parts
    return select_model(
        train,
        val,
        target="y",
        forecaster_args={"lookback": 24, "horizon": 2},
        candidates=("nlinear", "dlinear", "lstm"),
        epochs=2,
    )


def test_auto_keeps_the_lowest_validation_loss_and_reports_every_candidate(selection):
    rows = {row["model"]: row for row in selection.candidates}
    assert list(rows) == ["nlinear", "dlinear", "lstm"]
    assert all(row["status"] == "trained" for row in rows.values())
    lowest = min(rows, key=lambda name: rows[name]["val_loss"])
    assert selection.chosen == lowest
    assert rows[lowest]["val_loss"] == selection.forecaster.validation_check_.model
    table = selection.table()
    assert all(name in table for name in rows) and "linear (baseline)" in table


def test_auto_scores_every_candidate_on_one_loss(small_parts):
    """nbeats trains on MAE when chosen by name; among candidates scored on MSE it would be
    judged on a loss it did not minimise, so auto trains all of them on one."""
    train, val, _ = small_parts
    result = select_model(
        train, val, target="y", forecaster_args={"lookback": 24}, candidates=("nlinear", "nbeats"),
        epochs=1,
    )  # fmt: skip
    assert [row["loss"] for row in result.candidates] == ["mse", "mse"]
    assert result.to_json()["loss"] == "mse"


def test_auto_runs_nlinear_even_with_no_budget_and_skips_the_rest(small_parts):
    train, val, _ = small_parts
    result = select_model(
        train,
        val,
        target="y",
        forecaster_args={"lookback": 24},
        candidates=("lstm", "nlinear"),
        budget_seconds=0,
        epochs=5,
    )
    assert result.chosen == "nlinear"
    assert result.candidates[0]["out_of_time"] and result.candidates[0]["epochs_trained"] == 1
    assert [(r["model"], r["status"][:7]) for r in result.candidates] == [
        ("nlinear", "trained"),
        ("lstm", "skipped"),
    ]


def test_auto_refuses_options_of_one_family(small_parts):
    train, val, _ = small_parts
    with pytest.raises(dc.ConfigError, match="units belongs to one family"):
        select_model(train, val, target="y", forecaster_args={"units": 8})


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "series.csv"
    dc.datasets.synthetic(n_steps=700, seed=2).to_csv(path)
    return path


def test_cli_auto_writes_the_selection_and_the_check(csv_file, tmp_path, capsys):
    out = tmp_path / "auto"
    code = main(
        ["run", "--data", str(csv_file), "--target", "y", "--model", "auto", "--lookback", "24",
         "--epochs", "1", "--auto-budget", "0", "--out", str(out)]
    )  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0 and "model selection on validation mse" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_selection"]["chosen"] == "nlinear" == metrics["params"]["model"]
    assert metrics["validation_check"]["best_baseline"] in metrics["validation_check"]["baselines"]
    assert metrics["start"]["baseline"] in ("naive", "seasonal_naive", "linear")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "auto", "--tuner", "random"], "--model auto chooses among families"),
        (["--model", "nlinear", "--units", "8"], "units=8 sets the model's option 'units'"),
        (["--model", "cnn_lstm", "--model-option", "filtres=8"], "cnn_lstm has no option"),
        (["--model", "cnn_lstm", "--model-option", "filters"], "expects KEY=VALUE"),
        (["--model", "cnn_lstm", "--model-option", "filters=0"], "filters must be an int >= 1"),
        (["--model", "gru"], "unknown model 'gru'; available: lstm, bilstm"),
        (["--features", ""], "empty column name"),
        (["--features", "x1,,x2"], "empty column name"),
        (["--features", "x1,x1"], "names 'x1' twice"),
        (["--features", "y,x1"], "names the target 'y'"),
    ],
)
def test_bad_model_and_feature_options_get_one_line_and_exit_2(
    csv_file, tmp_path, capsys, args, message
):
    code = main(["run", "--data", str(csv_file), "--target", "y", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_backtest_scores_one_family_not_auto(csv_file, tmp_path, capsys):
    code = main(["backtest", "--data", str(csv_file), "--target", "y", "--model", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and "a backtest scores one family" in err and "fold" not in err


def test_features_none_is_the_targets_own_history(csv_file, tmp_path, capsys):
    out = tmp_path / "target-only"
    code = main(
        ["run", "--data", str(csv_file), "--target", "y", "--features", "none", "--model",
         "nlinear", "--lookback", "24", "--epochs", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert dc.load(out / "model").feature_names_ == ["y"]


def test_model_option_reaches_the_saved_model(csv_file, tmp_path, capsys):
    out = tmp_path / "cnn"
    code = main(
        ["run", "--data", str(csv_file), "--target", "y", "--model", "cnn_lstm", "--lookback",
         "24", "--epochs", "1", "--units", "8", "--model-option", "filters=6",
         "--model-option", "dilation=2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    config = dc.load(out / "model").configured_model().config
    assert (config["filters"], config["dilation"], config["units"]) == (6, 2, 8)
