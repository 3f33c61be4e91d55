"""evaluate(): the ridge baseline against scikit-learn, scoring with history, and several
seasonal periods, each checked against an independent recomputation."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error

import deepcast as dc
from deepcast.errors import ConfigError, DataError

COLS = ["y", "x1", "x2"]


def windows(values: np.ndarray, lookback: int, horizon: int):
    """Plain-loop windows: inputs rows i..i+L-1, targets column 0 of rows i+L..i+L+H-1."""
    n = len(values) - lookback - horizon + 1
    x = np.stack([values[i : i + lookback].ravel() for i in range(n)])
    y = np.stack([values[i + lookback : i + lookback + horizon, 0] for i in range(n)])
    return x, y


def test_linear_baseline_is_sklearn_ridge_on_the_same_windows(fitted, small_parts):
    train, _, test = small_parts
    mean, std = train[COLS].mean().to_numpy(), train[COLS].std(ddof=0).to_numpy()
    scale = lambda frame: ((frame[COLS].to_numpy() - mean) / std).astype("float32")  # noqa: E731
    x_train, y_train = windows(scale(train), 24, 3)
    ridge = Ridge(alpha=1.0).fit(x_train, y_train)
    # evaluate() scores origins from row max(lookback, period) - 1 = 23 of the test part.
    x_test, y_test = windows(scale(test), 24, 3)
    predicted = ridge.predict(x_test) * std[0] + mean[0]
    actual = y_test * std[0] + mean[0]
    result = fitted.evaluate(test)["baselines"]["linear"]
    assert result["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-5)
    assert result["rmse"] == pytest.approx(mean_squared_error(actual, predicted) ** 0.5, rel=1e-5)


def test_with_history_every_test_row_is_a_target(fitted, small_parts):
    train, val, test = small_parts
    history = pd.concat([train, val])
    result = fitted.evaluate(test, history=history)
    assert result["n_forecasts"] == len(test) - 3 + 1
    assert result["first_target"] == str(test.index[0])
    # The model's forecasts are predict() on history tail + test, from the last history row.
    joined = pd.concat([history.iloc[-24:], test])
    forecast = fitted.predict(joined).to_numpy()[: len(test) - 2]
    y = test["y"].to_numpy()
    actual = np.stack([y[i : i + 3] for i in range(len(test) - 2)])
    assert result["mae"] == pytest.approx(mean_absolute_error(actual, forecast), rel=1e-6)
    # Weekly seasonal naive: each target copies the value 168 hours earlier.
    full = pd.concat([history, test])["y"].to_numpy()
    start = len(history)
    weekly = np.stack([full[start + i - 168 : start + i - 168 + 3] for i in range(len(test) - 2)])
    assert result["baselines"]["seasonal_naive_168"]["mae"] == pytest.approx(
        mean_absolute_error(actual, weekly), rel=1e-9
    )
    assert result["seasonal_periods"] == [24, 168]


def test_history_must_come_before_the_data(fitted, small_parts):
    train, val, test = small_parts
    with pytest.raises(DataError, match="history must end before data starts"):
        fitted.evaluate(val, history=pd.concat([train, val, test]))


def test_seasonal_periods_can_be_given_as_a_list(small_parts):
    train, val, test = small_parts
    f = dc.Forecaster("y", lookback=24, units=8, layers=1, seasonal_period=[24, 12], seed=0)
    f.fit(train, validation=val, epochs=1, verbose=False)
    result = f.evaluate(test)
    assert set(result["baselines"]) == {"naive", "seasonal_naive", "seasonal_naive_12", "linear"}
    assert result["seasonal_period"] == 24


@pytest.mark.parametrize("bad", [0, [24, 0], [], "24", 2.5])
def test_bad_seasonal_periods_are_named(bad, small_parts):
    train, val, _ = small_parts
    f = dc.Forecaster("y", lookback=24, units=8, layers=1, seasonal_period=bad)
    with pytest.raises(ConfigError, match="seasonal_period"):
        f.fit(train, validation=val, epochs=1, verbose=False)


def test_skill_is_measured_against_the_hardest_seasonal_naive(fitted, small_parts):
    train, val, test = small_parts
    result = fitted.evaluate(test, history=pd.concat([train, val]))
    # The hardest seasonal naive is the one with the lowest MAE (one rule, evaluation/baselines);
    # the skill is an RMSE ratio against it.
    seasonal = {k: v for k, v in result["baselines"].items() if k.startswith("seasonal")}
    best = min(seasonal, key=lambda k: seasonal[k]["mae"])
    assert result["skill_reference"] == best
    rmse = seasonal[best]["rmse"]
    assert result["skill_vs_seasonal_naive"] == pytest.approx(1 - result["rmse"] / rmse)
