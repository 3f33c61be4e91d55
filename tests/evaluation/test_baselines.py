"""Baselines on tiny hand-made series, seasonal periods, and the ridge baseline vs sklearn."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from deepcast.errors import DataError, ModelFileError, NotFittedError
from deepcast.evaluation.baselines import (
    LinearBaseline,
    baseline_label,
    best_baseline,
    infer_seasonal_period,
    naive,
    seasonal_naive,
    seasonal_periods,
    strongest_baseline,
)


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("h", 24),
        ("30min", 48),
        ("15min", 96),
        ("10min", 144),
        ("min", 1440),
        ("D", 7),
        ("W", 52),
        ("MS", 12),
        ("ME", 12),
        ("QS", 4),
        ("B", 5),
    ],
)
def test_infer_seasonal_period(freq, expected):
    index = pd.date_range("2024-01-01", periods=60, freq=freq)
    assert infer_seasonal_period(index) == expected


def test_seasonal_periods_lists_day_and_week():
    hourly = pd.date_range("2024-01-01", periods=10, freq="h")
    half_hourly = pd.date_range("2024-01-01", periods=10, freq="30min")
    assert seasonal_periods(hourly) == [24, 168]
    assert seasonal_periods(half_hourly) == [48, 336]


def test_period_falls_back_to_median_spacing_with_gaps():
    index = pd.date_range("2024-01-01", periods=100, freq="h").delete([5, 6, 40])
    assert pd.infer_freq(index) is None
    assert infer_seasonal_period(index) == 24


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2024-01-01", periods=20, freq="7min"),
        pd.date_range("2024-01-01", periods=20, freq="2D"),
        pd.DatetimeIndex(["2024-01-01"]),
        pd.RangeIndex(20),
    ],
)
def test_uninferable_period_is_a_clear_data_error(index):
    with pytest.raises(DataError, match="seasonal period"):
        infer_seasonal_period(index)


def test_naive_exact():
    target = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    forecast = naive(target, np.array([0, 2, 4]), horizon=2)
    np.testing.assert_array_equal(forecast, [[10, 10], [12, 12], [14, 14]])


def test_seasonal_naive_exact():
    target = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    # origin 3, period 2: rows 4, 5, 6 copy rows 2, 3, 2 (k = 1, 1, 2)
    # origin 5, period 2: rows 6, 7, 8 copy rows 4, 5, 4
    forecast = seasonal_naive(target, np.array([3, 5]), horizon=3, period=2)
    np.testing.assert_array_equal(forecast, [[2, 3, 2], [4, 5, 4]])
    # period 3, origin 2 (just enough history): rows 3..7 copy rows 0, 1, 2, 0, 1
    forecast = seasonal_naive(target, np.array([2]), horizon=5, period=3)
    np.testing.assert_array_equal(forecast, [[0, 1, 2, 0, 1]])


def test_seasonal_naive_period_one_is_naive():
    target = np.arange(8.0) ** 2
    origins = np.array([1, 4, 7])
    np.testing.assert_array_equal(
        seasonal_naive(target, origins, horizon=3, period=1), naive(target, origins, horizon=3)
    )


def test_baselines_reject_origins_without_history():
    target = np.arange(6.0)
    with pytest.raises(DataError, match="origin 1 has only 2"):
        seasonal_naive(target, np.array([1, 4]), horizon=2, period=3)
    with pytest.raises(DataError, match="origins"):
        naive(target, np.array([-1]), horizon=1)
    with pytest.raises(DataError, match="origins"):
        naive(target, np.array([6]), horizon=1)


@pytest.fixture
def windows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 5, 2)).astype(np.float32)  # scaled windows are float32
    Y = X[:, -1, :1] * 0.8 + X[:, -2, 1:] * 0.3 + rng.normal(0, 0.1, size=(60, 1))
    return X, np.hstack([Y, 2 * Y, Y - 1])  # (60, 3): three horizon steps


def test_linear_baseline_equals_sklearn_ridge(windows):
    X, Y = windows
    model = LinearBaseline(alpha=0.5).fit(X, Y)
    flat = X.reshape(len(X), -1).astype(np.float64)
    reference = Ridge(alpha=0.5).fit(flat, Y)
    prediction = model.predict(X)
    assert prediction.shape == (60, 3)
    np.testing.assert_allclose(prediction, reference.predict(flat), rtol=1e-12, atol=1e-12)


def test_linear_baseline_json_round_trip_predicts_identically(windows):
    X, Y = windows
    model = LinearBaseline().fit(X, Y)
    state = json.loads(json.dumps(model.to_json()))
    copy = LinearBaseline.from_json(state)
    assert copy.alpha == 1.0
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))


def test_linear_baseline_errors(windows):
    X, Y = windows
    with pytest.raises(NotFittedError):
        LinearBaseline().predict(X)
    model = LinearBaseline().fit(X, Y)
    with pytest.raises(DataError, match="windows of shape"):
        model.predict(X[:, 1:, :])
    state = model.to_json()
    del state["intercept"]
    with pytest.raises(ModelFileError):
        LinearBaseline.from_json(state)


# What `Forecaster.evaluate` reports: the weekly seasonal naive beats the daily one by MAE but
# not by RMSE (one large miss), and the linear baseline beats both.
EVALUATED = {
    "naive": {"rmse": 4.0, "mae": 3.0, "mase": 1.5},
    "seasonal_naive": {"rmse": 2.0, "mae": 1.8, "mase": 0.9},
    "seasonal_naive_168": {"rmse": 2.5, "mae": 1.2, "mase": 0.6},
    "linear": {"rmse": 1.5, "mae": 1.0, "mase": None},
}
# A backtest's aggregate: the model first, each metric as a mean and sd over folds.
AGGREGATE = {
    "model": {"folds": 3, "mae": {"mean": 0.1, "std": 0.0}},
    "naive": {"folds": 3, "mae": {"mean": 0.9, "std": 0.1}},
    "seasonal_naive": {"folds": 3, "mae": {"mean": 0.7, "std": 0.1}},
    "seasonal_naive_365": {"folds": 1, "mae": {"mean": 0.5, "std": 0.0}},
    "linear": {"folds": 3, "mae": {"mean": 0.6, "std": 0.1}},
}


def test_best_baseline_is_the_lowest_seasonal_naive_by_mae():
    assert best_baseline(EVALUATED) == "seasonal_naive_168"
    assert best_baseline(EVALUATED, metric="rmse") == "seasonal_naive"
    assert best_baseline(AGGREGATE) == "seasonal_naive_365"  # ranked by the mean over folds


def test_strongest_baseline_looks_at_every_baseline_but_never_the_model():
    assert strongest_baseline(EVALUATED) == "linear"
    assert strongest_baseline(AGGREGATE) == "seasonal_naive_365"  # the model's 0.1 is not one
    worse_linear = {**AGGREGATE, "linear": {"mae": {"mean": 0.2, "std": 0.0}}}
    assert strongest_baseline(worse_linear) == "linear"
    assert strongest_baseline({"naive": {"mae": 1.0}, "seasonal_naive": {"mae": 1.1}}) == "naive"


def test_undefined_scores_are_passed_over_and_ties_go_to_the_first_listed():
    assert strongest_baseline(EVALUATED, metric="mase") == "seasonal_naive_168"  # linear: None
    nan = {"seasonal_naive": {"mae": float("nan")}, "seasonal_naive_12": {"mae": 3.0}}
    assert best_baseline(nan) == "seasonal_naive_12"
    tie = {"naive": {"mae": 1.0}, "seasonal_naive": {"mae": 1.0}, "linear": {"mae": 1.0}}
    assert strongest_baseline(tie) == "naive"


def test_no_baseline_with_the_metric_is_an_error_that_names_it():
    with pytest.raises(DataError, match="no baseline named seasonal_naive\\* has a mae score"):
        best_baseline({"model": {"mae": 1.0}, "naive": {"mae": 1.0}})
    with pytest.raises(DataError, match="no baseline has a mape score"):
        strongest_baseline(EVALUATED, metric="mape")


def test_baseline_labels_name_the_period():
    assert baseline_label("seasonal_naive", 24) == "seasonal naive, period 24"
    assert baseline_label("seasonal_naive_168", 24) == "seasonal naive, period 168"
    assert baseline_label("naive", 24) == "naive"
    assert baseline_label("linear", 24) == "linear (ridge)"
