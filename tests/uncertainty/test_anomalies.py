"""Anomaly flags: the band arithmetic, a planted spike, the false-alarm rate on clean data,
the `deepcast anomalies` command, and a planted series against the rolling z-score."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import deepcast as dc
from deepcast.cli import main
from deepcast.data.synthetic import NOISE_SD
from deepcast.errors import ConfigError
from deepcast.uncertainty import anomalies as detector
from deepcast.uncertainty.zscore import precision_recall, rolling_zscore

N_STEPS, SEED, LOOKBACK = 2400, 1, 24
COLUMNS = ["timestamp", "actual", "expected", "lo", "hi", "score", "is_anomaly"]


@pytest.fixture(scope="module")
def planted():
    return dc.datasets.synthetic(n_steps=N_STEPS, seed=SEED, anomalies=8, return_truth=True)


@pytest.fixture(scope="module")
def fitted(planted) -> dc.Forecaster:
    """A small CNN-LSTM trained on the first 60% of a planted series, calibrated on the next
    20% (anomalies included: robust calibration has to cope)."""
    train, val, _ = dc.split(planted[0], val=0.2, test=0.2)
    f = dc.Forecaster(
        "y",
        lookback=LOOKBACK,
        model="cnn_lstm",
        model_options={"filters": 32, "units": 32, "layers": 1},
        learning_rate=3e-3,
        seed=0,
    )
    return f.fit(train, validation=val, epochs=15, verbose=False)


@pytest.fixture(scope="module")
def flags(fitted, planted) -> pd.DataFrame:
    return fitted.anomalies(planted[0], level=99)


def _reference_half_width(scores: np.ndarray, level: float) -> float:
    """From the definitions: Gaussian scale from the median |r|, the Bonferroni cut at 1%,
    then the ceil((m + 1) level / 100)-th smallest of the m residuals left."""
    scores = np.sort(scores)
    sigma = np.median(scores) / stats.norm.ppf(0.75)
    kept = scores[scores <= sigma * stats.norm.isf(0.01 / (2 * len(scores)))]
    return kept[math.ceil((len(kept) + 1) * level / 100) - 1]


def test_robust_calibration_leaves_out_only_what_clean_noise_would_not_produce():
    rng = np.random.default_rng(0)
    clean = np.abs(rng.standard_normal(600))
    spoiled = np.r_[clean, 40.0, 45.0, 50.0]  # three anomalies among the calibration rows
    for level in (99, 99.5):
        assert detector.half_width(spoiled, level) == _reference_half_width(spoiled, level)
        assert detector.half_width(spoiled, level) <= detector.half_width(clean, level)
    # At 99.8 the plain conformal quantile of 603 residuals is their largest: an anomaly.
    assert detector.half_width(spoiled, 99.8, robust=False) == 50.0
    assert detector.half_width(spoiled, 99.8) == np.sort(clean)[-1]
    assert detector.half_width(clean, 99) == _reference_half_width(clean, 99)


def test_flags_are_the_band_recomputed_independently(fitted, planted, flags):
    df = planted[0]
    assert list(flags.reset_index().columns) == COLUMNS
    assert flags.index.equals(df.index[LOOKBACK:])
    np.testing.assert_array_equal(flags["actual"], df["y"].to_numpy()[LOOKBACK:])
    half = _reference_half_width(fitted.conformal_.scores[:, 0], 99)
    np.testing.assert_allclose(flags["hi"] - flags["expected"], half, rtol=1e-12)
    np.testing.assert_allclose(flags["expected"] - flags["lo"], half, rtol=1e-12)
    distance = np.abs(flags["actual"] - flags["expected"])
    np.testing.assert_allclose(flags["score"], distance / half, rtol=1e-12)
    np.testing.assert_array_equal(flags["is_anomaly"], distance > half)
    assert flags["is_anomaly"].dtype == bool


def test_expected_is_the_plain_forecast_until_the_first_flag(fitted, planted, flags):
    raw = detector.anomalies(fitted, fitted._frame(planted[0], "data"), 99, clean=False)
    windows = fitted._input_windows(fitted._frame(planted[0], "data"))[:-1]
    np.testing.assert_allclose(raw["expected"], fitted._predict_windows(windows)[:, 0])
    first = int(np.argmax(flags["is_anomaly"].to_numpy()))
    np.testing.assert_allclose(flags["expected"][: first + 1], raw["expected"][: first + 1])


def test_a_planted_spike_is_flagged_and_its_echo_is_not(fitted):
    df = dc.datasets.synthetic(n_steps=800, seed=11)
    row = 500
    df.iloc[row, df.columns.get_loc("y")] += 25 * NOISE_SD
    out = fitted.anomalies(df, level=99)
    i = row - LOOKBACK
    assert out["is_anomaly"].iloc[i] and out["score"].iloc[i] > 1
    raw = detector.anomalies(fitted, fitted._frame(df, "data"), 99, clean=False)
    # The raw forecasts chase the spike; with it cleaned from the inputs they do not.
    after = slice(i + 1, i + 4)
    assert raw["score"].iloc[after].max() > out["score"].iloc[after].max()
    assert not out["is_anomaly"].iloc[after].any()


def test_a_level_shift_is_flagged_where_it_starts_and_ends_only(fitted):
    df = dc.datasets.synthetic(n_steps=800, seed=12)
    df.iloc[400:460, df.columns.get_loc("y")] += 15 * NOISE_SD  # 60 rows, then back
    out = fitted.anomalies(df, level=99)
    raw = detector.anomalies(fitted, fitted._frame(df, "data"), 99, clean=False)
    onset, back = 400 - LOOKBACK, 460 - LOOKBACK
    assert out["is_anomaly"].iloc[onset] and out["is_anomaly"].iloc[back]
    # Inside the shift the model is judged at the new level; the raw forecasts lag behind it.
    assert out["is_anomaly"].iloc[onset + 1 : back].sum() == 0
    assert raw["is_anomaly"].iloc[onset + 1 : back].sum() >= 2


@pytest.mark.parametrize("level", [90, 99])
def test_clean_data_is_flagged_at_about_one_minus_the_level(fitted, level):
    """Calibrated on one clean series and judging another over the same hours (fresh noise,
    so the two sets of residuals are exchangeable), the flagged fraction is 1 - level/100 up
    to the binomial noise of both sets."""
    calibrated = copy.copy(fitted)  # its own conformal_; the model is shared, not changed
    calibrated.calibrate(dc.datasets.synthetic(n_steps=1920, seed=101))
    out = calibrated.anomalies(dc.datasets.synthetic(n_steps=1920, seed=102), level=level)
    n, m, p = len(out), calibrated.conformal_.n, 1 - level / 100
    sd = n * math.sqrt(p * (1 - p) * (1 / n + 1 / m))
    assert abs(int(out["is_anomaly"].sum()) - n * p) <= 4 * sd, (out["is_anomaly"].sum(), n * p)


def test_beats_the_rolling_zscore_on_planted_anomalies(planted, flags):
    df, truth = planted
    common = flags.index[flags.index >= df.index[48]]  # the z-score's window is 48 rows
    truth_rows = truth.anomaly_rows(common)
    ours = precision_recall(flags.loc[common, "is_anomaly"].to_numpy(), truth_rows, tolerance=2)
    _, z = rolling_zscore(df["y"].to_numpy(), window=48, level=99)
    baseline = precision_recall(z[48:], truth_rows, tolerance=2)
    assert ours["f1"] > baseline["f1"] + 0.3, (ours, baseline)
    assert ours["recall"] >= 0.5


def test_a_level_the_calibration_cannot_reach_is_a_clear_error(fitted, planted):
    with pytest.raises(ConfigError, match=r"level=99.9 needs at least 999 calibration"):
        fitted.anomalies(planted[0], level=99.9)


@pytest.fixture(scope="module")
def saved(fitted, planted, tmp_path_factory):
    root = tmp_path_factory.mktemp("anomalies")
    fitted.save(root / "model")
    planted[0].iloc[-600:].to_csv(root / "series.csv")
    return root


def test_cli_writes_the_table_and_the_figure(saved, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["anomalies", "--model", str(saved / "model"), "--data", str(saved / "series.csv")]
    code = main([*args, "--level", "95", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    table = pd.read_csv(out / "anomalies.csv")
    assert list(table.columns) == COLUMNS
    assert len(table) == 600 - LOOKBACK
    assert table["is_anomaly"].dtype == bool
    assert (out / "anomalies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stdout.strip().count("\n") == 0
    assert f"{table['is_anomaly'].sum()} of {len(table)} observations" in stdout
    assert "95%" in stdout


@pytest.mark.parametrize("broken", ["missing data", "corrupt model"])
def test_cli_bad_input_is_one_line_and_exit_2(saved, tmp_path, capsys, broken):
    model, data = saved / "model", saved / "series.csv"
    if broken == "missing data":
        data, named = tmp_path / "nope.csv", "nope.csv"
    else:
        model = tmp_path / "model"
        model.mkdir()
        (model / "forecaster.json").write_text("{not json")
        named = str(model)
    out = tmp_path / "out"
    code = main(["anomalies", "--model", str(model), "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("deepcast: error:") and named in err[0]
    assert not out.exists()
