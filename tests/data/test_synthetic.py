"""The synthetic generator: shape, determinism, and that the documented formula holds."""

import numpy as np
import pandas as pd
import pytest

from deepcast.data import synthetic as synthetic_module
from deepcast.data.synthetic import PlantedTruth, planted_truth, synthetic
from deepcast.errors import ConfigError


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return synthetic(n_steps=4000, seed=0)


def _acf(values: np.ndarray, lag: int) -> float:
    v = values - values.mean()
    return float((v[lag:] * v[:-lag]).sum() / (v * v).sum())


def _r2(design: np.ndarray, y: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), design])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return 1 - np.var(y - design @ coef) / np.var(y)


def _lagged(df: pd.DataFrame, column: str, lags) -> np.ndarray:
    return np.column_stack([df[column].shift(k).to_numpy() for k in lags])


def _controls(index: pd.DatetimeIndex) -> np.ndarray:
    """Trend and the documented daily/weekly sinusoids (as sin/cos pairs)."""
    t = np.arange(len(index), dtype=float)
    hour = index.hour.to_numpy()
    week = index.day_of_week.to_numpy() * 24 + hour
    angles = [2 * np.pi * hour / 24, 2 * np.pi * week / 168]
    return np.column_stack([t] + [f(a) for a in angles for f in (np.sin, np.cos)])


def test_shape_index_and_columns(df):
    assert df.shape == (4000, 3)
    assert list(df.columns) == ["x1", "x2", "y"]
    assert (df.dtypes == "float64").all()
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "timestamp"
    assert df.index.freqstr == "h"
    assert df.index[0] == pd.Timestamp("2024-01-01")
    assert np.isfinite(df.to_numpy()).all()


def test_start_is_honoured():
    assert synthetic(n_steps=5, start="2023-06-01 12:00").index[0] == pd.Timestamp(
        "2023-06-01 12:00"
    )


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b, c = synthetic(500, seed=7), synthetic(500, seed=7), synthetic(500, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_shorter_series_is_a_prefix_of_a_longer_one():
    pd.testing.assert_frame_equal(synthetic(300, seed=2), synthetic(900, seed=2).iloc[:300])


def test_return_truth():
    df, truth = synthetic(100, seed=0, return_truth=True)
    assert isinstance(truth, PlantedTruth)
    assert truth == planted_truth()
    assert len(df) == 100


def test_planted_truth_cells_and_weights():
    truth = planted_truth()
    assert truth.cells == (("x1", 3), ("x2", 6))
    assert truth.weights == {("x1", 3): 2.0, ("x2", 6): -1.5}
    assert truth.max_lag == 6
    assert all(1 <= lag < 24 for _, lag in truth.cells)
    with pytest.raises(AttributeError):
        truth.target = "z"  # frozen


def test_formula_is_documented_in_the_module_docstring():
    normalise = " ".join
    assert normalise(planted_truth().formula.split()) in normalise(synthetic_module.__doc__.split())


def test_documented_formula_holds_exactly(df):
    """y minus the documented trend, seasonality and drivers leaves the documented AR(1)."""
    t = np.arange(len(df), dtype=float)
    hour = df.index.hour.to_numpy()
    week = df.index.day_of_week.to_numpy() * 24 + hour
    x1_3, x2_6 = df["x1"].shift(3).to_numpy(), df["x2"].shift(6).to_numpy()
    expected = (
        10
        + 0.0005 * t
        + 1.0 * np.sin(2 * np.pi * (hour - 6) / 24)
        + 0.8 * np.sin(2 * np.pi * week / 168)
        + 2.0 * x1_3
        - 1.5 * x2_6
        + 1.0 * x1_3 * x2_6
    )
    noise = (df["y"].to_numpy() - expected)[6:]
    phi, *_ = np.linalg.lstsq(noise[:-1, None], noise[1:], rcond=None)
    innovation = noise[1:] - phi[0] * noise[:-1]
    assert phi[0] == pytest.approx(0.7, abs=0.04)
    assert innovation.std() == pytest.approx(0.35, abs=0.02)
    # The truth object computes the same driver component.
    driver = planted_truth().driver(df).to_numpy()
    np.testing.assert_allclose(driver[6:], (2.0 * x1_3 - 1.5 * x2_6 + x1_3 * x2_6)[6:])
    assert np.isnan(driver[:6]).all()


def test_planted_lags_explain_y_and_other_lags_add_almost_nothing(df):
    rows = slice(24, None)  # every lag up to 24 is defined from here on
    y = df["y"].to_numpy()[rows]
    x1_3, x2_6 = df["x1"].shift(3).to_numpy(), df["x2"].shift(6).to_numpy()
    planted = np.column_stack([x1_3, x2_6, x1_3 * x2_6])[rows]
    assert _r2(planted, y) > 0.8

    controls = _controls(df.index)[rows]
    other = np.column_stack(
        [
            _lagged(df, "x1", [k for k in range(1, 25) if k != 3]),
            _lagged(df, "x2", [k for k in range(1, 25) if k != 6]),
        ]
    )[rows]
    base = _r2(np.column_stack([planted, controls]), y)
    assert base > 0.95
    assert _r2(np.column_stack([planted, controls, other]), y) - base < 0.005


def test_linear_lag_scan_finds_the_planted_lags(df):
    """Regress y on every lag 1..24 of x1 and x2: the largest coefficients sit on the truth."""
    rows = slice(24, None)
    lags = range(1, 25)
    design = np.column_stack(
        [_lagged(df, "x1", lags), _lagged(df, "x2", lags), _controls(df.index)]
    )
    design = np.column_stack([np.ones(len(df)), design])[rows]
    coef, *_ = np.linalg.lstsq(design, df["y"].to_numpy()[rows], rcond=None)
    x1_coef, x2_coef = coef[1:25], coef[25:49]
    assert int(np.argmax(np.abs(x1_coef))) + 1 == 3
    assert int(np.argmax(np.abs(x2_coef))) + 1 == 6
    assert x1_coef[2] == pytest.approx(2.0, abs=0.1)
    assert x2_coef[5] == pytest.approx(-1.5, abs=0.1)
    # Not smeared: every other lag is small next to the planted one.
    assert np.abs(np.delete(x1_coef, 2)).max() < 0.15
    assert np.abs(np.delete(x2_coef, 5)).max() < 0.15


def test_inputs_are_only_mildly_autocorrelated(df):
    for column in ("x1", "x2"):
        assert abs(_acf(df[column].to_numpy(), 1)) < 0.5


def test_daily_and_weekly_seasonality(df):
    y = df["y"].to_numpy()
    assert _acf(y, 24) - _acf(y, 12) > 0.15
    assert _acf(y, 168) - _acf(y, 84) > 0.2
    # Without the drivers, the seasonal base is strongly periodic.
    base = (df["y"] - planted_truth().driver(df)).to_numpy()[6:]
    assert _acf(base, 24) > 0.6
    assert _acf(base, 168) > 0.6


def test_window_model_beats_seasonal_naive_clearly(df):
    """Even a linear model on a 24-row window beats seasonal naive by far at horizon 1."""
    lookback, values = 24, df[["y", "x1", "x2"]].to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)[:-1]
    design = np.column_stack([np.ones(len(windows)), windows.reshape(len(windows), -1)])
    target = values[lookback:, 0]
    n_train = int(0.7 * len(target))
    coef, *_ = np.linalg.lstsq(design[:n_train], target[:n_train], rcond=None)
    model_rmse = np.sqrt(np.mean((design[n_train:] @ coef - target[n_train:]) ** 2))
    seasonal = values[lookback - 24 : -24, 0]
    naive_rmse = np.sqrt(np.mean((seasonal[n_train:] - target[n_train:]) ** 2))
    assert model_rmse < 0.5 * naive_rmse


@pytest.mark.parametrize("n_steps", [0, -5, 2.5, True])
def test_bad_n_steps(n_steps):
    with pytest.raises(ConfigError, match="n_steps"):
        synthetic(n_steps=n_steps)


def test_bad_start():
    with pytest.raises(ConfigError, match="start"):
        synthetic(n_steps=10, start="not a date")
