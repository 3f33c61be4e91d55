"""Metrics against scikit-learn and against values worked out by hand."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
)

from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.metrics import (
    all_metrics,
    mae,
    mape,
    mase,
    mase_scale,
    per_step_metrics,
    rmse,
    smape,
)


@pytest.fixture
def forecasts():
    rng = np.random.default_rng(0)
    y_true = rng.uniform(1.0, 10.0, size=(40, 3))  # no zeros, so MAPE matches sklearn
    y_pred = y_true + rng.normal(0.0, 0.7, size=y_true.shape)
    return y_true, y_pred


def test_rmse_mae_match_sklearn(forecasts):
    y_true, y_pred = forecasts
    # sklearn averages per output column; with equal column sizes that is the grand mean.
    assert rmse(y_true, y_pred) == pytest.approx(math.sqrt(mean_squared_error(y_true, y_pred)))
    assert mae(y_true, y_pred) == pytest.approx(mean_absolute_error(y_true, y_pred))


def test_mape_is_sklearn_in_percent(forecasts):
    y_true, y_pred = forecasts
    expected = 100 * mean_absolute_percentage_error(y_true, y_pred)
    assert mape(y_true, y_pred) == pytest.approx(expected)


def test_hand_computed_values():
    y = np.array([2.0, 4.0, 8.0])
    f = np.array([3.0, 2.0, 8.0])
    assert rmse(y, f) == pytest.approx(math.sqrt((1 + 4 + 0) / 3))
    assert mae(y, f) == pytest.approx(1.0)
    assert mape(y, f) == pytest.approx((50 + 50 + 0) / 3)
    # 200 * |y - f| / (|y| + |f|): 200/5 = 40, 400/6 = 66.67, 0
    assert smape(y, f) == pytest.approx((40 + 400 / 6 + 0) / 3)


def test_mape_skips_zero_actuals_and_is_nan_when_all_zero():
    assert mape(np.array([0.0, 10.0]), np.array([5.0, 12.0])) == pytest.approx(20.0)
    assert math.isnan(mape(np.zeros(3), np.ones(3)))


def test_smape_bounds_and_double_zero():
    assert smape(np.array([1.0, -1.0]), np.array([-1.0, 1.0])) == pytest.approx(200.0)
    # both zero counts as a perfect entry, not 0/0
    assert smape(np.array([0.0, 4.0]), np.array([0.0, 4.0])) == 0.0
    assert smape(np.array([0.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(100.0)


def test_mase_scale_and_mase_by_hand():
    train = np.array([1.0, 3.0, 2.0, 6.0, 5.0])
    # period 1: |3-1| + |2-3| + |6-2| + |5-6| = 2 + 1 + 4 + 1 = 8 over 4
    assert mase_scale(train, period=1) == pytest.approx(2.0)
    # period 2: |2-1| + |6-3| + |5-2| = 7 over 3
    assert mase_scale(train, period=2) == pytest.approx(7 / 3)
    y, f = np.array([4.0, 7.0]), np.array([5.0, 4.0])  # MAE 2
    assert mase(y, f, scale=mase_scale(train, 2)) == pytest.approx(2 / (7 / 3))
    assert math.isnan(mase(y, f, scale=0.0))


def test_mase_scale_rejects_short_series_and_bad_period():
    with pytest.raises(DataError, match="period 3"):
        mase_scale(np.array([1.0, 2.0, 3.0]), period=3)
    with pytest.raises(ConfigError, match="period"):
        mase_scale(np.arange(10.0), period=0)


def test_shape_mismatch_is_an_error_not_a_broadcast():
    with pytest.raises(DataError, match="same shape"):
        rmse(np.zeros(4), np.zeros((4, 1)))
    with pytest.raises(DataError, match="empty"):
        mae(np.zeros(0), np.zeros(0))


def test_all_metrics_is_json_safe_plain_floats(forecasts):
    y_true, y_pred = forecasts
    result = all_metrics(y_true, y_pred, mase_scale=2.0)
    assert list(result) == ["rmse", "mae", "mape", "smape", "mase"]
    assert all(type(v) is float for v in result.values())
    assert result["mase"] == pytest.approx(result["mae"] / 2.0)
    json.dumps(result, allow_nan=False)


def test_all_metrics_turns_undefined_into_none():
    result = all_metrics(np.zeros(3), np.ones(3), mase_scale=None)
    assert result["mape"] is None
    assert result["mase"] is None
    assert result["rmse"] == 1.0
    assert json.loads(json.dumps(result, allow_nan=False))["mape"] is None


def test_per_step_metrics_by_hand():
    y = np.zeros((2, 3))
    f = np.array([[1.0, 2.0, -3.0], [1.0, -4.0, 3.0]])
    result = per_step_metrics(y, f)
    assert result["mae"] == pytest.approx([1.0, 3.0, 3.0])
    assert result["rmse"] == pytest.approx([1.0, math.sqrt(10.0), 3.0])
    assert per_step_metrics(np.zeros(2), np.array([1.0, 3.0]))["mae"] == [2.0]
