"""Rolling-origin backtests: exact fold layout, no future rows in training or scaling, and
per-fold scores that are the forecaster's own hold-out evaluation."""

import json

import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast.cli import main
from deepcast.data.windows import Scaler
from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.backtest import fold_bounds

TINY = {"lookback": 12, "horizon": 2, "units": 8, "layers": 1, "seed": 0}


def test_fold_bounds_are_expanding_and_contiguous():
    bounds = fold_bounds(100, folds=2, fold_size=10, val=0.15)
    assert [b.test for b in bounds] == [(80, 90), (90, 100)]
    # Validation is the newest 15% of the rows before each test block; fit is the rest.
    assert [b.validation for b in bounds] == [(68, 80), (76, 90)]
    assert [b.fit for b in bounds] == [(0, 68), (0, 76)]
    # Default: 10% of the rows per fold, or less so the first fold keeps half for training.
    assert [b.test for b in fold_bounds(1000, folds=5)][0] == (500, 600)
    assert fold_bounds(1000, folds=8)[0].test == (504, 566)  # 8 folds of 1000 // 16 = 62 rows


def test_fold_bounds_reject_impossible_layouts():
    with pytest.raises(ConfigError, match="folds must be a positive integer"):
        fold_bounds(100, folds=0)
    with pytest.raises(DataError, match="too few for 5 folds of 30 rows"):
        fold_bounds(100, folds=5, fold_size=30)


def crafted(n=400, seed=0):
    """A series whose later rows are different in level, so a leak would move the scaler."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="timestamp")
    y = np.sin(2 * np.pi * np.arange(n) / 24) + 0.1 * rng.normal(size=n)
    x = rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x}, index=index)


@pytest.fixture(scope="module")
def result():
    return dc.Forecaster("y", **TINY).backtest(crafted(), folds=3, fold_size=40, epochs=2)


def test_each_fold_trains_and_scales_only_on_rows_before_its_test_block(result):
    df = crafted()
    bounds = fold_bounds(len(df), 3, 40)
    for fold, bound, forecaster in zip(result.folds, bounds, result.forecasters, strict=True):
        fit_rows = df.iloc[slice(*bound.fit)]
        assert forecaster.train_end_ == fit_rows.index[-1] < pd.Timestamp(fold["test_start"])
        expected = Scaler.fit(fit_rows.to_numpy())
        np.testing.assert_allclose(forecaster.scaler_.mean, expected.mean)
        np.testing.assert_allclose(forecaster.scaler_.scale, expected.scale)
        assert fold["rows"] == {
            "train": bound.fit[1] - bound.fit[0],
            "validation": bound.validation[1] - bound.validation[0],
            "test": 40,
        }
        assert fold["test_start"] == str(df.index[bound.test[0]])


def test_changing_the_future_does_not_change_an_earlier_fold(result):
    df = crafted()
    changed = df.copy()
    first_test = fold_bounds(len(df), 3, 40)[1].test[0]  # where fold 2's test block starts
    changed.iloc[first_test:] *= 1000.0  # everything from fold 2 on becomes absurd
    again = dc.Forecaster("y", **TINY).backtest(changed, folds=3, fold_size=40, epochs=2)
    assert again.folds[0]["metrics"]["mae"] == pytest.approx(
        result.folds[0]["metrics"]["mae"], rel=1e-6
    )
    np.testing.assert_allclose(
        again.forecasters[0].scaler_.mean, result.forecasters[0].scaler_.mean
    )
    assert again.folds[1]["metrics"]["mae"] > 100 * result.folds[1]["metrics"]["mae"]


def test_fold_scores_are_the_evaluation_of_that_fold(result):
    df = crafted()
    bound = fold_bounds(len(df), 3, 40)[2]
    expected = result.forecasters[2].evaluate(
        df.iloc[slice(*bound.test)], history=df.iloc[: bound.test[0]]
    )
    assert result.folds[2]["metrics"]["mae"] == pytest.approx(expected["mae"])
    # Every row of the block is a forecast target: 40 rows, horizon 2 -> 39 forecasts.
    assert result.folds[2]["metrics"]["n_forecasts"] == 39
    maes = [f["metrics"]["mae"] for f in result.folds]
    assert result.aggregate["model"]["mae"]["mean"] == pytest.approx(np.mean(maes))
    assert result.aggregate["model"]["mae"]["std"] == pytest.approx(np.std(maes))
    assert set(result.aggregate) >= {"model", "naive", "seasonal_naive", "linear"}


def test_without_retraining_one_model_serves_every_fold():
    result = dc.Forecaster("y", **TINY).backtest(
        crafted(), folds=3, fold_size=40, epochs=2, retrain=False
    )
    first = result.forecasters[0]
    assert all(f is first for f in result.forecasters)
    assert [f["retrained"] for f in result.folds] == [True, False, False]
    assert first.train_end_ < pd.Timestamp(result.folds[0]["test_start"])


def test_folds_shorter_than_the_horizon_are_refused():
    with pytest.raises(DataError, match="shorter than the horizon 5"):
        dc.Forecaster("y", lookback=12, horizon=5).backtest(crafted(), folds=2, fold_size=3)


def test_backtest_command_writes_json_and_png(tmp_path, capsys):
    path = tmp_path / "series.csv"
    crafted().to_csv(path)
    out = tmp_path / "bt"
    args = ["backtest", "--data", str(path), "--target", "y", "--folds", "2", "--fold-size", "40"]
    args += [
        "--lookback",
        "12",
        "--units",
        "8",
        "--layers",
        "1",
        "--epochs",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    report = json.loads((out / "backtest.json").read_text())
    assert len(report["folds"]) == 2 and report["settings"]["retrain"] is True
    assert report["data"]["source"] == "series.csv"
    assert (out / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MAE per fold" in stdout and "skill" in stdout
