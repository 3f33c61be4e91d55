"""Recalibrating a fitted distribution's spread on validation data: the factor is the
maximum-likelihood scale (SciPy's fit as the oracle), multiplies spreads only, is fitted by
DeepAR's fit on the validation part, and is saved with the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models import spread_calibration as spread


def test_the_head_layer_multiplies_spreads_and_nothing_else():
    raw = np.random.default_rng(0).normal(size=(5, 2 * 3)).astype("float32")  # H 2, C 3
    plain = np.asarray(heads.HeadLayer(2, ("location", "spread", "shape"))(raw))
    scaled = np.asarray(heads.HeadLayer(2, ("location", "spread", "shape"), 1.7)(raw))
    np.testing.assert_allclose(scaled[..., 1], 1.7 * plain[..., 1], rtol=1e-6)
    np.testing.assert_array_equal(scaled[..., [0, 2]], plain[..., [0, 2]])


@pytest.mark.parametrize("kind", ["gaussian", "student_t"])
def test_the_factor_is_the_maximum_likelihood_scale(kind):
    rng = np.random.default_rng(1)
    n, df = 4000, 5.0
    loc, scale = rng.normal(size=n), rng.uniform(0.5, 2.0, size=n)
    noise = rng.standard_normal(n) if kind == "gaussian" else rng.standard_t(df, n)
    y = loc + 1.6 * scale * noise  # the model's scale is 1.6 times too small
    params = np.stack([loc, scale, np.full(n, df)], axis=1)[:, : heads.Head(kind).channels]
    factor = spread.fit_spread_factor(heads.Head(kind), params, y)
    z = (y - loc) / scale
    if kind == "gaussian":
        _, oracle = stats.norm.fit(z, floc=0)
    else:
        _, _, oracle = stats.t.fit(z, fdf=df, floc=0)
    assert factor == pytest.approx(oracle, rel=1e-3)
    assert factor == pytest.approx(1.6, rel=0.05)


def test_the_factor_stays_in_bounds_and_ignores_missing_targets():
    params = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    y = np.array([100.0, -100.0, np.nan])
    assert spread.fit_spread_factor(heads.Head("gaussian"), params, y) == spread.BOUNDS[1]
    with pytest.raises(ConfigError, match="spread"):
        spread.fit_spread_factor(heads.Head("quantile", (0.1, 0.5, 0.9)), params, y)


def mean_square_z(f: dc.Forecaster, history: pd.DataFrame, data: pd.DataFrame) -> float:
    """Mean squared standardised residual of a Gaussian head over every step of every window
    of `data` with H targets (the windows fit and calibrate read), recomputed here."""
    joined = pd.concat([history.iloc[-f.lookback :], data])
    n = len(data) - f.horizon + 1
    params = f._predict_params(f._input_windows(f._frame(joined, "data"))[:n])  # [n, H, 2]
    actual = data["y"].to_numpy()[np.arange(n)[:, None] + np.arange(f.horizon)]  # [n, H]
    z = (actual - params[..., 0]) / params[..., 1]
    return float(np.mean(z * z))


@pytest.fixture(scope="module")
def parts():
    df = dc.datasets.synthetic(n_steps=1100, seed=2)
    return df.iloc[:700], df.iloc[700:900], df.iloc[900:]


def test_deepar_fits_its_factor_on_the_validation_part_and_saves_it(parts, tmp_path):
    train, val, test = parts
    f = dc.Forecaster("y", lookback=24, horizon=2, model="deepar", loss="gaussian", units=8)
    f.fit(train, validation=val, epochs=3, batch_size=32, verbose=False)
    layers = spread.head_layers(f.model_)
    factor = layers[0].spread_factor
    assert len(layers) == 2 and {layer.spread_factor for layer in layers} == {factor}
    assert factor != 1.0
    # After it, the validation targets have unit-variance standardised residuals.
    assert mean_square_z(f, train, val) == pytest.approx(1.0, abs=1e-3)
    saved = dc.Forecaster.load(f.save(tmp_path / "model"))
    assert {layer.spread_factor for layer in spread.head_layers(saved.model_)} == {factor}
    np.testing.assert_array_equal(saved.predict_samples(test, n=20), f.predict_samples(test, n=20))


def test_calibrate_refits_the_factor_on_the_rows_it_is_given(parts):
    train, val, _ = parts
    f = dc.Forecaster("y", lookback=24, horizon=2, model="deepar", loss="gaussian", units=8)
    f.fit(train, validation=val, epochs=2, batch_size=32, verbose=False)
    fitted = spread.spread_factor(f.model_)
    f.calibrate(val, history=train)  # the same windows: the same factor
    assert spread.spread_factor(f.model_) == pytest.approx(fitted, rel=1e-4)
    f.calibrate(val.iloc[:20] * 5.0, history=train)  # 19 windows x 2 steps: too few to refit
    assert spread.spread_factor(f.model_) == pytest.approx(fitted, rel=1e-4)
    noisy = val.assign(y=val["y"] + np.random.default_rng(0).normal(0, 3.0, len(val)))
    f.calibrate(noisy, history=train)  # larger errors: a wider spread, fitted to them
    assert spread.spread_factor(f.model_) > 1.2 * fitted
    assert mean_square_z(f, train, noisy) == pytest.approx(1.0, abs=1e-3)


def test_a_warm_start_without_validation_keeps_the_factor_it_started_from(parts):
    train, val, _ = parts
    args = dict(target="y", lookback=24, horizon=2, model="deepar", loss="gaussian", units=8)
    old = dc.Forecaster(**args).fit(train, validation=val, epochs=1, verbose=False)
    new = dc.Forecaster(**args).fit(val, epochs=1, warm_start=old, verbose=False)
    assert spread.spread_factor(new.model_) == spread.spread_factor(old.model_) != 1.0


def test_a_direct_family_keeps_its_trained_spread(parts):
    train, val, _ = parts
    f = dc.Forecaster("y", lookback=24, horizon=2, model="nlinear", loss="gaussian")
    f.fit(train, validation=val, epochs=2, verbose=False)
    assert spread.spread_factor(f.model_) == 1.0
