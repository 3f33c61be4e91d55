"""Rolling-origin backtests: exact fold layout, no future rows in training or scaling, and
per-fold scores that are the forecaster's own hold-out evaluation."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error

import deepcast as dc
from deepcast.cli import main
from deepcast.data.windows import Scaler
from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.backtest import fold_bounds
from deepcast.evaluation.baselines import baseline_label

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


def test_changing_a_folds_test_block_and_later_rows_leaves_its_training_untouched(result):
    df = crafted()
    first_test = fold_bounds(len(df), 3, 40)[0].test[0]  # where fold 1's own test block starts
    changed = df.copy()
    changed.iloc[first_test:] *= 1000.0  # a leak of any of these rows would show
    again = dc.Forecaster("y", **TINY).backtest(changed, folds=3, fold_size=40, epochs=2)
    before, after = result.forecasters[0], again.forecasters[0]
    np.testing.assert_array_equal(after.scaler_.mean, before.scaler_.mean)
    np.testing.assert_array_equal(after.scaler_.scale, before.scaler_.scale)
    for w_before, w_after in zip(
        before.model.get_weights(), after.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(w_after, w_before)
    np.testing.assert_array_equal(after.linear_baseline_.coef_, before.linear_baseline_.coef_)
    # ... while its scores, computed on the changed test rows, do move.
    assert again.folds[0]["metrics"]["mae"] > 100 * result.folds[0]["metrics"]["mae"]


def test_fold_scores_match_an_independent_recomputation(result):
    df = crafted()
    start, stop = fold_bounds(len(df), 3, 40)[2].test
    forecaster = result.forecasters[2]
    # Forecasts from every origin whose 2 targets lie in the block: predict() on the lookback
    # rows before it plus the block, scored with scikit-learn.
    forecast = forecaster.predict(df.iloc[start - 12 : stop]).to_numpy()[: stop - start - 1]
    y = df["y"].to_numpy()
    actual = np.stack([y[start + i : start + i + 2] for i in range(stop - start - 1)])
    assert result.folds[2]["metrics"]["n_forecasts"] == 39
    assert result.folds[2]["metrics"]["mae"] == pytest.approx(
        mean_absolute_error(actual, forecast), rel=1e-6
    )
    maes = [f["metrics"]["mae"] for f in result.folds]
    assert result.aggregate["model"]["mae"]["mean"] == pytest.approx(np.mean(maes))
    assert result.aggregate["model"]["mae"]["std"] == pytest.approx(np.std(maes))
    assert set(result.aggregate) >= {"model", "naive", "seasonal_naive", "linear"}


def test_the_last_fold_figure_draws_the_strongest_baseline_over_the_folds(result):
    mean_mae = {name: s["mae"]["mean"] for name, s in result.aggregate.items() if name != "model"}
    strongest = min(mean_mae, key=mean_mae.get)
    last = result.last_fold
    assert last["baseline_name"] == strongest
    assert len(last["baseline"]) == len(last["actual"]) == len(last["timestamps"])
    bottom = result.plot().axes[1]
    dashed = [line for line in bottom.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    np.testing.assert_array_equal(dashed[0].get_ydata(), last["baseline"])
    assert dashed[0].get_label().startswith(f"{baseline_label(strongest, 24)} t+1 (MAE ")


def test_a_baseline_missing_from_early_folds_is_aggregated_over_the_rest():
    from deepcast.evaluation.backtest import _aggregate

    def fold(mae, extra):
        baselines = {"naive": {"mae": 2.0, "rmse": 2.0, "smape": 1.0, "mase": 1.0}}
        if extra is not None:
            baselines["seasonal_naive_365"] = {
                "mae": extra,
                "rmse": extra,
                "smape": 1.0,
                "mase": 1.0,
            }
        return {
            "metrics": {"mae": mae, "rmse": mae, "smape": 1.0, "mase": 1.0, "baselines": baselines}
        }

    aggregate = _aggregate([fold(1.0, None), fold(1.0, 3.0), fold(1.0, 5.0)])
    assert aggregate["seasonal_naive_365"]["folds"] == 2
    assert aggregate["seasonal_naive_365"]["mae"]["mean"] == 4.0
    assert aggregate["naive"]["folds"] == 3


def test_without_retraining_one_model_serves_every_fold():
    result = dc.Forecaster("y", **TINY).backtest(
        crafted(), folds=3, fold_size=40, epochs=2, retrain=False
    )
    first = result.forecasters[0]
    assert all(f is first for f in result.forecasters)
    assert [f["retrained"] for f in result.folds] == [True, False, False]
    assert first.train_end_ < pd.Timestamp(result.folds[0]["test_start"])
    # Every fold reports the rows its (shared) model actually learned from: fold 1's.
    assert {f["train_end"] for f in result.folds} == {str(first.train_end_)}
    assert {f["rows"]["train"] for f in result.folds} == {result.folds[0]["rows"]["train"]}


def test_too_few_rows_for_the_default_fold_size_says_so():
    with pytest.raises(DataError, match="9 rows are too few for 5 folds"):
        dc.Forecaster("y", lookback=2).backtest(crafted().iloc[:9], folds=5)


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
