"""Drift monitoring: the statistics against hand and loop computations, the reference's
round trip, cooldowns, and the detectors on stable and shifted synthetic streams (oracle
one-step errors computed from the planted formula; no model is trained here)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from deepcast.data.synthetic import DRIFT_X1_COEF, Y_SD, planted_truth, synthetic
from deepcast.errors import ConfigError, DataError
from deepcast.monitoring import Alarm, DriftReference, ErrorDrift, InputDrift
from deepcast.monitoring.reference import CLIP
from deepcast.monitoring.statistics import (
    cusum,
    psi,
    quantile_edges,
    robust_location_scale,
    rolling_counts,
)

N_REF, N_LIVE, SHIFT = 1500, 2000, 1000


def oracle_errors(df: pd.DataFrame) -> np.ndarray:
    """One-step errors of the forecaster that knows the drift-free formula: it forecasts the
    trend, seasons and drivers exactly, and 0.7 times the previous row's noise. Without drift
    the error is 0.35 e3_t, white noise; NaN on the first rows (no lagged drivers)."""
    t = np.arange(len(df), dtype=float)
    hour = df.index.hour.to_numpy()
    week = df.index.day_of_week.to_numpy() * 24 + hour
    known = (
        10
        + 0.0005 * t
        + np.sin(2 * np.pi * (hour - 6) / 24)
        + 0.8 * np.sin(2 * np.pi * week / 168)
        + planted_truth().driver(df).to_numpy()
    )
    noise = df["y"].to_numpy() - known
    return noise[1:] - 0.7 * noise[:-1]  # the error of row t + 1


def streams(seed: int, drift: str | None = None):
    """(reference, live errors, live frame): the reference from the first N_REF rows, the live
    part the next N_LIVE rows (with the window of rows before it), shifted at SHIFT."""
    at = None if drift is None else N_REF + SHIFT
    df = synthetic(n_steps=N_REF + N_LIVE, seed=seed, drift=drift, drift_at=at)
    errors = oracle_errors(df)  # errors[r - 1] is row r's
    df = df[["y", "x1", "x2"]]  # the target first, as a model's input columns are
    ref = DriftReference.build(df.iloc[:N_REF], errors[10 : N_REF - 1], period=168)
    live = errors[N_REF - 1 :]
    return ref, live, df.iloc[N_REF - ref.window + 1 :]


@pytest.fixture(scope="module")
def stable():
    return [streams(seed) for seed in range(5)]


# -- statistics ---------------------------------------------------------------------------
def test_cusum_by_hand_and_against_a_loop():
    np.testing.assert_allclose(
        cusum(np.array([0.0, 2.0, 2.0, -1.0, -5.0]), 0.5), [0, 1.5, 3, 1.5, 0]
    )
    x = np.random.default_rng(0).normal(0.3, 1, 500)
    expected, s = [], 0.0
    for value in x:
        s = max(0.0, s + value - 0.25)
        expected.append(s)
    np.testing.assert_allclose(cusum(x, 0.25), expected)
    # A missing error leaves the statistic where it was.
    np.testing.assert_allclose(cusum(np.array([1.0, np.nan, 1.0]), 0.0), [1, 1, 2])


def test_psi_by_hand():
    # counts (30, 10) against (0.5, 0.5): smoothed p = (30.5, 10.5) / 41
    p1, p2 = 30.5 / 41, 10.5 / 41
    by_hand = (p1 - 0.5) * math.log(p1 / 0.5) + (p2 - 0.5) * math.log(p2 / 0.5)
    assert psi(np.array([30, 10]), np.array([0.5, 0.5])) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.2601, abs=1e-4)
    assert psi(np.array([20, 20]), np.array([0.5, 0.5])) == pytest.approx(0.0)


def test_rolling_counts_match_each_window():
    bins = np.random.default_rng(1).integers(-1, 4, 60)  # -1: a missing value
    counts = rolling_counts(bins, 4, 7)
    assert counts.shape == (54, 4)
    for r in (0, 17, 53):
        window = bins[r : r + 7]
        np.testing.assert_array_equal(counts[r], np.bincount(window[window >= 0], minlength=4))


def test_edges_and_robust_scale():
    np.testing.assert_allclose(quantile_edges(np.array([0.0, 1, 1, 0, 1])), [0.5])
    assert len(quantile_edges(np.arange(1000.0))) == 9
    centre, scale = robust_location_scale(np.r_[np.random.default_rng(2).normal(5, 2, 4000), 1e6])
    assert centre == pytest.approx(5, abs=0.1) and scale == pytest.approx(2, rel=0.05)


# -- the reference ------------------------------------------------------------------------
def test_reference_round_trips_through_plain_json():
    ref, *_ = streams(0)
    assert ref.columns == ["y", "x1", "x2"]
    assert DriftReference.from_json(json.loads(json.dumps(ref.to_json()))) == ref


@pytest.mark.parametrize(("period", "window"), [(1, 168), (24, 168), (100, 200), (168, 168)])
def test_window_is_a_whole_number_of_periods(period, window):
    frame = pd.DataFrame({"y": np.arange(50.0)})
    assert DriftReference.build(frame, np.arange(40.0), period).window == window


def test_bad_arguments_name_themselves():
    frame = pd.DataFrame({"y": np.arange(50.0), "x": np.arange(50.0)})
    ref = DriftReference.build(frame, np.arange(40.0), 24)
    with pytest.raises(ConfigError, match="period=0"):
        DriftReference.build(frame, np.arange(40.0), 0)
    with pytest.raises(DataError, match="too few"):
        DriftReference.build(frame, np.arange(5.0), 24)
    with pytest.raises(ConfigError, match="threshold=-1"):
        ErrorDrift(ref, threshold=-1)
    with pytest.raises(ConfigError, match="cooldown=0"):
        InputDrift(ref, cooldown=0)
    with pytest.raises(DataError, match=r"\['x'\] missing"):
        InputDrift(ref).scan(frame[["y"]])


# -- the error detector -------------------------------------------------------------------
def test_error_alarm_is_the_first_crossing_of_a_cusum_on_standardised_errors():
    rng = np.random.default_rng(3)
    # AR(1) reference errors: the memory factor is then well above 1.
    ref_errors = np.convolve(rng.normal(size=400), 0.5 ** np.arange(20))[:400]
    ref = DriftReference.build(pd.DataFrame({"y": rng.normal(size=300)}), ref_errors, 1)
    assert ref.errors.memory > 1.3
    errors = np.r_[rng.normal(size=300), rng.normal(1.5, 1, 200)] * ref.errors.scale
    alarm = ErrorDrift(ref, threshold=8, slack=0.5).scan(errors)[0]
    z = np.clip((errors - ref.errors.centre) / ref.errors.scale, -CLIP, CLIP)
    lag1 = np.corrcoef(
        np.clip((ref_errors - ref.errors.centre) / ref.errors.scale, -CLIP, CLIP)[1:],
        np.clip((ref_errors - ref.errors.centre) / ref.errors.scale, -CLIP, CLIP)[:-1],
    )[0, 1]
    z = z / np.sqrt((1 + max(lag1, 0.0)) / (1 - max(lag1, 0.0)))  # the memory factor
    s, path = 0.0, []
    for value in z:
        s = max(0.0, s + value - 0.5)
        path.append(s)
    paths = ErrorDrift(ref, threshold=8, slack=0.5).statistics(errors)
    np.testing.assert_allclose(paths["up"], path)
    # The alarm is the first row where any of the three paths crosses, named after it.
    crossed = {name: int(np.argmax(p > 8)) for name, p in paths.items() if (p > 8).any()}
    name = min(crossed, key=crossed.get)
    first = crossed[name]
    assert alarm == Alarm(first, "errors", paths[name][first], 8.0, {"direction": name})
    assert 300 <= alarm.index < 330 and crossed["up"] < 330


def test_one_lasting_shift_is_one_alarm_and_a_second_shift_another():
    rng = np.random.default_rng(4)
    ref = DriftReference.build(pd.DataFrame({"y": rng.normal(size=300)}), rng.normal(size=400), 1)
    errors = np.r_[rng.normal(size=200), rng.normal(2, 1, 800), rng.normal(-1, 3, 600)]
    alarms = ErrorDrift(ref, cooldown=100).scan(errors)
    assert [a.detail["direction"] for a in alarms] == ["up", "spread"]
    assert 200 <= alarms[0].index < 220 and 1000 <= alarms[1].index < 1050
    # Cooldown: nothing alarms in the rows after an alarm, even on a fresh shift.
    errors = np.r_[rng.normal(size=200), rng.normal(4, 1, 30), rng.normal(-4, 1, 300)]
    alarms = ErrorDrift(ref, cooldown=100).scan(errors)
    assert alarms[0].index < 210 and all(a.index >= alarms[0].index + 100 for a in alarms[1:])


def test_no_error_alarm_on_stable_seasonal_streams(stable):
    for ref, errors, _ in stable:
        assert ErrorDrift(ref).scan(errors) == []


@pytest.mark.parametrize(
    ("drift", "directions"), [("level", {"up", "spread"}), ("driver", {"spread"})]
)
def test_planted_shifts_alarm_within_fifty_steps(drift, directions):
    for seed in range(3):
        ref, errors, _ = streams(seed, drift)
        alarms = ErrorDrift(ref).scan(errors)
        assert alarms and SHIFT <= alarms[0].index < SHIFT + 50
        assert alarms[0].detail["direction"] in directions


# -- the input detector -------------------------------------------------------------------
def test_no_input_alarm_on_stable_seasonal_streams(stable):
    for ref, _, frame in stable:
        assert InputDrift(ref).scan(frame) == []


def test_a_shifted_input_alarms_within_a_window_once():
    ref, _, frame = streams(0)
    frame = frame.copy()
    onset = ref.window - 1 + SHIFT
    frame.iloc[onset:, frame.columns.get_loc("x1")] += 1.0  # one sd of x1
    alarms = InputDrift(ref).scan(frame)
    assert len(alarms) == 1 and onset <= alarms[0].index < onset + ref.window
    assert alarms[0].detail["column"] == "x1" and alarms[0].statistic == alarms[0].detail["psi"]
    psi_x1 = InputDrift(ref).statistics(frame)["x1"]
    assert psi_x1.iloc[alarms[0].index] > 0.3 >= psi_x1.iloc[: alarms[0].index].max()


# -- the planted drift of the synthetic generator -----------------------------------------
@pytest.mark.parametrize("drift", ["level", "driver"])
def test_planted_drift_leaves_earlier_rows_and_inputs_alone(drift):
    clean = synthetic(n_steps=600, seed=5)
    df, truth = synthetic(n_steps=600, seed=5, drift=drift, drift_at=400, return_truth=True)
    assert (truth.drift, truth.drift_at) == (drift, 400)
    pd.testing.assert_frame_equal(df.iloc[:400], clean.iloc[:400])
    pd.testing.assert_frame_equal(df[["x1", "x2"]], clean[["x1", "x2"]])
    change = (df["y"] - clean["y"]).to_numpy()[400:]
    if drift == "level":
        np.testing.assert_allclose(change, Y_SD)
    else:
        np.testing.assert_allclose(change, (DRIFT_X1_COEF - 2.0) * clean["x1"].shift(3)[400:])
    # A shorter series is still a prefix of a longer one.
    longer = synthetic(n_steps=900, seed=5, drift=drift, drift_at=400)
    pd.testing.assert_frame_equal(longer.iloc[:600], df, check_freq=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"drift": "trend", "drift_at": 3}, "drift='trend'"),
        ({"drift_at": 3}, "drift_at=3"),
        ({"drift": "level"}, "drift_at=None"),
        ({"drift": "level", "drift_at": 100}, "drift_at=100"),
    ],
)
def test_planted_drift_arguments_are_checked(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        synthetic(n_steps=100, **kwargs)
