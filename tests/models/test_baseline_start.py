"""The baseline start: the baselines as exact linear maps of the window, the choice of the best
one on validation, and the gate that leaves only that baseline when the network lost to it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import huber

import deepcast as dc
from deepcast.evaluation import baselines
from deepcast.models.baseline_start import linear_baselines


def huber_loss(y, forecast) -> float:
    """The LSTM's own training loss (delta 1, scaled units), from scipy."""
    return float(np.mean(huber(1.0, np.asarray(forecast) - y)))


def test_the_linear_forms_are_the_baselines_themselves():
    """Each form applied to sliding windows equals the baseline function computed on the
    series (evaluation/baselines.py, an independent implementation)."""
    rng = np.random.default_rng(0)
    lookback, features, horizon = 10, 3, 7
    series = rng.normal(size=(60, features))
    x = np.lib.stride_tricks.sliding_window_view(series, lookback, axis=0).swapaxes(1, 2)
    origins = np.arange(len(x)) + lookback - 1
    ridge = baselines.LinearBaseline().fit(x[:-horizon], rng.normal(size=(len(x) - horizon, 7)))
    forms = linear_baselines(lookback, features, horizon, [4, 9, 24], ridge)
    assert set(forms) == {"naive", "seasonal_naive", "seasonal_naive_9", "linear"}  # 24 > L
    flat = x.reshape(len(x), -1)
    target = series[:, 0]
    expected = {
        "naive": baselines.naive(target, origins, horizon),
        "seasonal_naive": baselines.seasonal_naive(target, origins, horizon, 4),
        "seasonal_naive_9": baselines.seasonal_naive(target, origins, horizon, 9),
        "linear": ridge.predict(x),
    }
    for name, (coef, intercept) in forms.items():
        np.testing.assert_allclose(flat @ coef.T + intercept, expected[name], atol=1e-12)


def random_walk(n=1200, seed=0) -> pd.DataFrame:
    steps = np.random.default_rng(seed).normal(size=n)
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    return pd.DataFrame({"y": 100 + np.cumsum(steps)}, index=index)


@pytest.fixture(scope="module")
def walk_parts():
    return dc.split(random_walk(), val=0.15, test=0.15)


def test_a_network_that_loses_to_its_start_is_replaced_by_it(walk_parts):
    """On a random walk the naive forecast is the best there is: the start is the naive, a
    network pushed around by a far too high learning rate loses to it, and the model then
    forecasts exactly as the naive."""
    train, val, test = walk_parts
    f = dc.Forecaster("y", lookback=20, horizon=3, units=8, layers=1, learning_rate=5.0, seed=0)
    f.fit(train, validation=val, epochs=3, verbose=False)
    assert f.start_["baseline"] == "naive" and f.start_["gate_closed"]
    history = pd.concat([train, val])
    result = f.evaluate(test, history=history)
    assert result["mae"] == pytest.approx(result["baselines"]["naive"]["mae"], rel=1e-6)
    assert not f.validation_check_.lost  # exactly the naive: not a loss
    forecasts = f.predict(test).to_numpy()
    naive = np.repeat(test["y"].to_numpy()[f.lookback - 1 :, None], 3, axis=1)
    np.testing.assert_allclose(forecasts, naive, rtol=1e-5)


def test_the_start_is_chosen_on_validation_loss(walk_parts, small_parts):
    train, val, _ = small_parts  # synthetic: lagged drivers a linear map captures
    f = dc.Forecaster("y", lookback=24, horizon=2, units=8, layers=1, seed=0)
    f.fit(train, validation=val, epochs=1, verbose=False)
    x, y = f._windows(pd.concat([f._frame(train, "t").iloc[-24:], f._frame(val, "v")]))
    ridge = f.linear_baseline_.predict(x)
    naive = np.repeat(x[:, -1, :1], 2, axis=1)
    assert f.start_["baseline"] == "linear"
    assert f.start_["val_loss"] == pytest.approx(huber_loss(y, ridge), rel=1e-5)
    assert huber_loss(y, ridge) < huber_loss(y, naive)


def test_without_validation_the_start_is_the_ridge(small_parts):
    train, _, _ = small_parts
    f = dc.Forecaster("y", lookback=24, units=8, layers=1).fit(train, epochs=1, verbose=False)
    assert f.start_ == {"baseline": "linear", "val_loss": None, "gate_closed": False}


def test_the_start_is_saved_and_files_from_before_it_load(fitted, tmp_path):
    loaded = dc.load(fitted.save(tmp_path / "m"))
    assert loaded.start_ == fitted.start_ and loaded.baseline_start
    file = tmp_path / "m" / "forecaster.json"
    old = json.loads(file.read_text())
    del old["start"], old["params"]["baseline_start"]  # as written before the baseline start
    file.write_text(json.dumps(old))
    assert dc.load(tmp_path / "m").baseline_start is False


def test_the_gate_scale_is_the_best_on_validation(small_parts):
    """After training, the network is shrunk toward its start by the scale with the lowest
    validation loss: the final model is at least as good on validation as both the best
    epoch and the start, recomputed here from the forecasts in original units."""
    train, val, _ = small_parts
    f = dc.Forecaster("y", lookback=24, horizon=2, units=8, layers=1, seed=0)
    f.fit(train, validation=val, epochs=3, verbose=False)
    assert f.start_["gate_scale"] in dc.forecaster.GATE_SCALES
    assert f.start_["gate_closed"] == (f.start_["gate_scale"] == 0.0)
    x, y = f._windows(pd.concat([f._frame(train, "t").iloc[-24:], f._frame(val, "v")]))
    final = huber_loss(y, f.model_.predict(x, verbose=0))  # scaled units, as trained
    best_epoch = min(e["val_loss"] for e in f.history_.epochs)
    assert final <= min(best_epoch, f.start_["val_loss"]) * (1 + 1e-5)
