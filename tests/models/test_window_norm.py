"""Per-window normalisation: the numbers it computes, and the forecasts it makes possible."""

import keras
import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast import models
from deepcast.models.window_norm import EPSILON, WindowDenormalization, WindowNormalization


def windows(seed=0, n=6, lookback=10, features=3):
    return np.random.default_rng(seed).normal(size=(n, lookback, features)).astype("float32")


def test_target_column_is_standardised_per_window_and_covariates_pass_through():
    x = windows() * 3 + 5
    normalised, stats = (keras.ops.convert_to_numpy(a) for a in WindowNormalization()(x))
    mean, std = x[:, :, 0].mean(axis=1), np.sqrt(x[:, :, 0].var(axis=1) + EPSILON)
    np.testing.assert_allclose(stats, np.stack([mean, std], axis=1), rtol=1e-5)
    np.testing.assert_allclose(
        normalised[:, :, 0], (x[:, :, 0] - mean[:, None]) / std[:, None], atol=1e-5
    )
    np.testing.assert_array_equal(normalised[:, :, 1:], x[:, :, 1:])
    forecast = np.ones((6, 4), "float32") * 2.0
    back = keras.ops.convert_to_numpy(WindowDenormalization()(forecast, stats))
    np.testing.assert_allclose(back, forecast * std[:, None] + mean[:, None], rtol=1e-5)


def test_forecasts_follow_the_windows_level_and_spread():
    keras.utils.set_random_seed(0)
    options = {"units": 8, "layers": 2, "dropout": 0.0}
    model = models.build("lstm", 10, 3, 4, options, window_norm=True)
    plain = models.build("lstm", 10, 3, 4, options)
    x = windows(1)
    shifted, stretched = x.copy(), x.copy()
    shifted[:, :, 0] += 7.0
    stretched[:, :, 0] = 3.0 * (x[:, :, 0] - 1.0) + 1.0
    base = keras.ops.convert_to_numpy(model(x))
    # Shift the target's history by c: every forecast moves by c. Stretch it about 1 by a:
    # every forecast stretches about 1 by a. A plain LSTM does neither.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(shifted)), base + 7.0, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(stretched)), 3.0 * (base - 1.0) + 1.0, atol=1e-3
    )
    moved = keras.ops.convert_to_numpy(plain(shifted)) - keras.ops.convert_to_numpy(plain(x))
    assert not np.allclose(moved, 7.0, atol=0.1)


def test_a_level_never_seen_in_training_is_absorbed(tmp_path):
    """Train at one level, forecast the same process 6 units (about 8 training std) higher:
    with window_norm the error stays near the noise, the plain model's does not. The model
    also saves and loads intact."""
    t = np.arange(1000)
    y = np.sin(2 * np.pi * t / 24) + 0.05 * np.random.default_rng(0).normal(size=t.size)
    df = pd.DataFrame({"y": y}, index=pd.date_range("2024-01-01", periods=t.size, freq="h"))
    train, val, test = df.iloc[:600], df.iloc[600:800], df.iloc[800:] + 6.0
    history = pd.concat([train, val]) + 6.0
    errors = {}
    for window_norm in (False, True):
        f = dc.Forecaster(
            "y",
            lookback=48,
            horizon=6,
            units=16,
            layers=1,
            window_norm=window_norm,
            learning_rate=5e-3,
            baseline_start=False,  # the network alone: a ridge path would not follow the level
        )
        f.fit(train, validation=val, epochs=6, batch_size=32, verbose=False)
        errors[window_norm] = f.evaluate(test, history=history)["mae"]
    assert errors[True] < 0.3 < errors[False]
    f.save(tmp_path / "model")
    loaded = dc.Forecaster.load(tmp_path / "model")
    assert loaded.window_norm is True
    np.testing.assert_allclose(loaded.predict(test).to_numpy(), f.predict(test).to_numpy())


@pytest.mark.parametrize("bad", [1, "yes"])
def test_window_norm_must_be_a_bool(bad):
    with pytest.raises(dc.errors.ConfigError, match="window_norm must be true or false"):
        dc.Forecaster("y", window_norm=bad).check_params()
