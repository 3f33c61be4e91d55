"""The synthetic generator: shape, determinism, and that the documented formula holds."""

import numpy as np
import pandas as pd
import pytest

from deepcast.data import synthetic as synthetic_module
from deepcast.data.synthetic import NOISE_SD, PlantedTruth, planted_truth, synthetic
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


def _documented_level(df: pd.DataFrame) -> np.ndarray:
    """y without its noise, by hand from the module docstring's formula (NaN for 6 rows)."""
    t = np.arange(len(df), dtype=float)
    hour = df.index.hour.to_numpy()
    week = df.index.day_of_week.to_numpy() * 24 + hour
    x1_3, x2_6 = df["x1"].shift(3).to_numpy(), df["x2"].shift(6).to_numpy()
    return (
        10
        + 0.0005 * t
        + 1.0 * np.sin(2 * np.pi * (hour - 6) / 24)
        + 0.8 * np.sin(2 * np.pi * week / 168)
        + 2.0 * x1_3
        - 1.5 * x2_6
        + 1.0 * x1_3 * x2_6
    )


def test_documented_formula_holds_exactly(df):
    """y minus the documented trend, seasonality and drivers leaves the documented AR(1)."""
    x1_3, x2_6 = df["x1"].shift(3).to_numpy(), df["x2"].shift(6).to_numpy()
    noise = (df["y"].to_numpy() - _documented_level(df))[6:]
    phi, *_ = np.linalg.lstsq(noise[:-1, None], noise[1:], rcond=None)
    innovation = noise[1:] - phi[0] * noise[:-1]
    assert phi[0] == pytest.approx(0.7, abs=0.04)
    assert innovation.std() == pytest.approx(0.35, abs=0.02)
    # The truth object computes the same driver component.
    driver = planted_truth().driver(df).to_numpy()
    np.testing.assert_allclose(driver[6:], (2.0 * x1_3 - 1.5 * x2_6 + x1_3 * x2_6)[6:])
    assert np.isnan(driver[:6]).all()


def test_one_step_mean_leaves_only_the_noise_shock(df):
    """The oracle forecast: y minus it is white noise of sd 0.35; recomputed by hand from the
    documented formula (trend, seasons, drivers, then 0.7 times the previous row's noise)."""
    level = _documented_level(df)
    noise = df["y"].to_numpy() - level
    by_hand = level[7:] + 0.7 * noise[6:-1]

    mean = planted_truth().one_step_mean(df)
    assert mean.index.equals(df.index) and mean.iloc[:7].isna().all()
    np.testing.assert_allclose(mean.to_numpy()[7:], by_hand, rtol=0, atol=1e-9)
    shock = (df["y"] - mean).to_numpy()[7:]
    assert shock.std() == pytest.approx(0.35, abs=0.02)
    assert abs(np.corrcoef(shock[1:], shock[:-1])[0, 1]) < 0.05  # nothing left to forecast


def test_one_step_mean_refuses_a_drifted_series():
    df, truth = synthetic(n_steps=400, seed=0, drift="level", drift_at=200, return_truth=True)
    with pytest.raises(ConfigError, match="drift-free"):
        truth.one_step_mean(df)


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


# --- planted anomalies ---------------------------------------------------------------------


def _offsets(truth: PlantedTruth, index: pd.DatetimeIndex) -> np.ndarray:
    """What the truth table says was added to y on each row."""
    offsets = np.zeros(len(index))
    for start, row in truth.anomalies.iterrows():
        offsets[(index >= start) & (index <= row["end"])] += row["magnitude"]
    return offsets


@pytest.mark.parametrize("seed", [0, 1, 5, 17])
def test_zero_anomalies_leave_the_series_untouched(seed):
    clean, truth = synthetic(700, seed=seed, return_truth=True)
    same, same_truth = synthetic(700, seed=seed, anomalies=0, return_truth=True)
    pd.testing.assert_frame_equal(same, clean, check_exact=True)
    assert same_truth == truth == planted_truth()
    assert truth.anomalies.empty
    assert list(truth.anomalies.columns) == ["kind", "magnitude", "end"]
    assert truth.anomalies.index.name == "timestamp"
    assert not truth.anomaly_rows(clean.index).any()


@pytest.mark.parametrize(
    ("n_steps", "count", "seed"), [(3000, 10, 0), (3000, 10, 1), (4000, 31, 2)]
)
def test_anomalies_are_exactly_the_planted_offsets(n_steps, count, seed):
    clean = synthetic(n_steps, seed=seed)
    df, truth = synthetic(n_steps, seed=seed, anomalies=count, return_truth=True)
    # The anomalies' own random stream leaves every clean draw where it was.
    pd.testing.assert_frame_equal(df[["x1", "x2"]], clean[["x1", "x2"]], check_exact=True)
    diff = df["y"].to_numpy() - clean["y"].to_numpy()
    expected = _offsets(truth, df.index)
    np.testing.assert_allclose(diff, expected, rtol=0, atol=1e-9)
    assert ((diff != 0) == (expected != 0)).all()
    assert len(truth.anomalies) == count
    assert truth.anomalies.index.isin(df.index).all()


def test_anomaly_kinds_sizes_and_lengths():
    table = pd.concat(
        synthetic(3000, seed=s, anomalies=12, return_truth=True)[1].anomalies for s in range(5)
    )
    kinds = table["kind"]
    assert set(kinds) == {"spike", "dip", "level_shift"}
    assert (kinds.value_counts() == 20).all()  # 12 per series: each kind 4 times
    size = table["magnitude"].abs() / NOISE_SD
    assert size.between(6, 10).all()
    assert (table["magnitude"][kinds == "spike"] > 0).all()
    assert (table["magnitude"][kinds == "dip"] < 0).all()
    shifts = table[kinds == "level_shift"]
    assert (shifts["magnitude"] > 0).any() and (shifts["magnitude"] < 0).any()
    one_row = table[kinds != "level_shift"]
    assert (one_row["end"] == one_row.index).all()
    rows = (shifts["end"] - shifts.index) / pd.Timedelta(hours=1) + 1
    assert rows.between(24, 72).all()


@pytest.mark.parametrize(("n_steps", "count"), [(3000, 10), (3000, 23), (700, 5), (127, 1)])
@pytest.mark.parametrize("seed", range(4))
def test_anomaly_placement(n_steps, count, seed):
    df, truth = synthetic(n_steps, seed=seed, anomalies=count, return_truth=True)
    table = truth.anomalies
    onsets = df.index.get_indexer(table.index)
    last_rows = df.index.get_indexer(table["end"])
    # A shift's last jump is its return row, one after its last shifted row.
    last_jumps = np.where(table["kind"] == "level_shift", last_rows + 1, onsets)
    first = int(np.ceil(0.05 * n_steps))
    assert (onsets >= first).all()
    assert (last_jumps < n_steps).all()
    assert (np.diff(onsets) > 0).all()
    assert (onsets[1:] - last_jumps[:-1] >= 48).all()
    # Spread over the whole series: one in each of `count` equal segments after the first 5%.
    edges = first + np.arange(count + 1) * (n_steps - first) // count
    np.testing.assert_array_equal(np.searchsorted(edges, onsets, side="right") - 1, range(count))


def test_anomaly_rows_mark_the_jumps():
    df, truth = synthetic(3000, seed=3, anomalies=10, return_truth=True)
    offsets = _offsets(truth, df.index)
    jumps = np.diff(offsets, prepend=0.0) != 0
    # y jumps back after a spike or dip too, but that row is normal: it is not an anomaly.
    one_row = df.index.isin(truth.anomalies.index[truth.anomalies["kind"] != "level_shift"])
    jumps[1:] &= ~one_row[:-1]
    rows = truth.anomaly_rows(df.index)
    assert rows.dtype == bool and rows.shape == (3000,)
    np.testing.assert_array_equal(rows, jumps)
    n_shifts = int((truth.anomalies["kind"] == "level_shift").sum())
    assert rows.sum() == 10 + n_shifts
    # Any part of the index works: the mask is per timestamp.
    np.testing.assert_array_equal(truth.anomaly_rows(df.index[1000:2000]), rows[1000:2000])


def test_anomalies_are_deterministic_per_seed():
    a, truth_a = synthetic(2000, seed=4, anomalies=8, return_truth=True)
    b, truth_b = synthetic(2000, seed=4, anomalies=8, return_truth=True)
    _, truth_c = synthetic(2000, seed=5, anomalies=8, return_truth=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert truth_a == truth_b
    assert truth_a != truth_c
    assert truth_a != planted_truth()
    assert not truth_a.anomalies.index.equals(truth_c.anomalies.index)


@pytest.mark.parametrize(
    ("n_steps", "anomalies"),
    [(3000, -1), (3000, 2.5), (3000, True), (3000, "3"), (3000, 24)] + [(100, 1)],
)
def test_bad_anomalies(n_steps, anomalies):
    with pytest.raises(ConfigError, match="anomalies"):
        synthetic(n_steps=n_steps, anomalies=anomalies)
