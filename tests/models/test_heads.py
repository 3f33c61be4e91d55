"""Output heads (models/heads.py): the canonical layout, quantiles that never cross, the
training losses against scikit-learn and scipy, spreads in original units (multiplied, never
shifted) through the scaler, window_norm and the baseline start, and sigma recovered from
noise of known size."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops
from scipy import stats
from sklearn.metrics import mean_pinball_loss

import deepcast as dc
from deepcast import _backend, models
from deepcast.data.windows import Scaler
from deepcast.errors import ConfigError
from deepcast.models import baseline_start as start
from deepcast.models import heads
from deepcast.models.window_norm import WindowDenormalization


def tensor(a) -> keras.KerasTensor:
    return ops.convert_to_tensor(np.asarray(a, dtype="float32"))


def numpy(t) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


def hand_quantiles(params: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """The layout read by hand: channel 0 the median, then the gaps below it (nearest first),
    then the gaps above it (nearest first); each quantile is the previous one -/+ its gap."""
    median = quantiles.index(0.5)
    values = np.empty(params.shape, dtype=np.float64)
    values[..., median] = params[..., 0]
    channel = 1
    for j in range(median - 1, -1, -1):
        values[..., j] = values[..., j + 1] - params[..., channel]
        channel += 1
    for j in range(median + 1, len(quantiles)):
        values[..., j] = values[..., j - 1] + params[..., channel]
        channel += 1
    return values


# --- the head a loss implies ---------------------------------------------------------------


def test_heads_of_the_losses():
    assert heads.for_loss("mse") == heads.Head("point")
    assert heads.for_loss("quantile").quantiles == heads.DEFAULT_QUANTILES
    gaussian, student = heads.for_loss("gaussian"), heads.for_loss("student_t")
    assert (gaussian.channels, gaussian.kinds) == (2, ("location", "spread"))
    assert (student.channels, student.kinds) == (3, ("location", "spread", "shape"))
    assert gaussian.output == student.output == "distribution"
    assert heads.from_json(student.to_json()) == student
    assert heads.from_json(None) == heads.Head("point")
    with pytest.raises(ConfigError, match="loss must be one of"):
        heads.for_loss("pinball")


@pytest.mark.parametrize(
    ("given_quantiles", "expected"),
    [
        ((0.1, 0.9), (0.1, 0.5, 0.9)),
        ([0.975, 0.025], (0.025, 0.5, 0.975)),
        ((0.9, 0.1, 0.5, 0.1), (0.1, 0.5, 0.9)),
        ((0.5,), (0.5,)),
        ((0.3,), (0.3, 0.5)),
    ],
)
def test_the_median_is_added_and_quantiles_sorted(given_quantiles, expected):
    head = heads.for_loss("quantile", given_quantiles)
    assert head.quantiles == expected
    assert head.quantiles[head.median_index] == 0.5
    assert head.kinds == ("location",) + ("spread",) * (len(expected) - 1)


@pytest.mark.parametrize(
    "bad", [(0.0, 0.9), (0.1, 1.0), (-0.1,), (1.5,), (float("nan"),), ("low",), 0.9]
)
def test_quantiles_outside_0_1_are_config_errors(bad):
    with pytest.raises(ConfigError, match=r"quantiles must be numbers in \(0, 1\)"):
        heads.for_loss("quantile", bad)
    f = dc.Forecaster("y", loss="quantile", quantiles=bad)
    with pytest.raises(ConfigError, match="quantiles"):
        f.check_params()


@pytest.mark.parametrize("given_quantiles", [(1e-7, 0.9), (0.1, 0.1000001), (0.4999999,)])
def test_quantiles_that_round_to_0_or_to_a_repeat_are_rejected_or_merged(given_quantiles):
    try:
        quantiles = heads.for_loss("quantile", given_quantiles).quantiles
    except ConfigError:
        return
    assert len(set(quantiles)) == len(quantiles)
    assert all(0.0 < q < 1.0 for q in quantiles)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "gaussian", "student_t"])
def test_quantiles_need_the_quantile_loss(loss, small_parts):
    f = dc.Forecaster("y", lookback=24, loss=loss, quantiles=(0.1, 0.9))
    with pytest.raises(ConfigError, match="quantiles are forecast with loss='quantile'"):
        f.check_params()
    with pytest.raises(ConfigError, match="quantiles"):
        f.fit(small_parts[0], epochs=1, verbose=False)
    assert not hasattr(f, "model_")


# --- the head layer: raw outputs -> parameters ---------------------------------------------

QUANTILE_SETS = st.lists(
    st.integers(1, 99).map(lambda p: p / 100), min_size=0, max_size=6, unique=True
)


@settings(max_examples=60, deadline=None)
@given(
    quantiles=QUANTILE_SETS,
    horizon=st.integers(1, 3),
    batch=st.integers(1, 4),
    data=st.data(),
)
def test_quantiles_never_cross(quantiles, horizon, batch, data):
    """Whatever the network emits, the assembled quantiles ascend with the level: the gaps
    are softplus values plus MIN_SPREAD, the median is the raw location."""
    head = heads.for_loss("quantile", quantiles)
    width = horizon * head.channels
    raw = data.draw(
        hnp.arrays(
            np.float32,
            (batch, width),
            elements=st.floats(-100, 100, width=32, allow_nan=False),
        )
    )
    params = numpy(heads.HeadLayer(horizon, head.kinds)(tensor(raw)))  # [B, H, C]
    assert params.shape == (batch, horizon, head.channels)
    np.testing.assert_array_equal(params[..., 0], raw.reshape(batch, horizon, -1)[..., 0])
    assert (params[..., 1:] >= heads.MIN_SPREAD * (1 - 1e-6)).all()
    values = head.quantile_values(params)  # float64, as the forecaster holds them
    assert values.shape == (batch, horizon, head.channels)
    assert (np.diff(values, axis=-1) > 0).all()
    np.testing.assert_allclose(values, hand_quantiles(params, head.quantiles), rtol=0, atol=1e-9)
    # In float32, as the loss assembles them: never crossing either.
    assert (np.diff(head.quantile_values(params.astype(np.float32)), axis=-1) >= 0).all()


def test_spreads_ignore_a_shift_of_every_raw_output():
    """nlinear adds the window's last value to every output: the location moves by it, the
    spreads and shapes (differences with the location) do not."""
    head = heads.for_loss("student_t")
    layer = heads.HeadLayer(2, head.kinds)
    raw = np.random.default_rng(0).normal(size=(5, 6))
    moved = numpy(layer(tensor(raw + 3.0)))
    params = numpy(layer(tensor(raw)))
    np.testing.assert_allclose(moved[..., 0], params[..., 0] + 3.0, atol=1e-5)
    np.testing.assert_allclose(moved[..., 1:], params[..., 1:], atol=1e-5)
    assert (params[..., 2] > heads.MIN_DF).all()  # the variance of a Student t exists


# --- the training losses against independent oracles ---------------------------------------


def test_pinball_loss_equals_sklearn_on_the_assembled_quantiles():
    head = heads.for_loss("quantile", (0.05, 0.25, 0.75, 0.95))
    rng = np.random.default_rng(1)
    y = rng.normal(size=(32, 3)) * 2
    params = np.concatenate(
        [rng.normal(size=(32, 3, 1)), rng.uniform(0.01, 2.0, size=(32, 3, 4))], axis=-1
    )
    values = hand_quantiles(params, head.quantiles)
    np.testing.assert_allclose(head.quantile_values(params), values, atol=1e-12)
    expected = np.mean(
        [
            mean_pinball_loss(y.ravel(), values[..., j].ravel(), alpha=q)
            for j, q in enumerate(head.quantiles)
        ]
    )
    ours = numpy(heads.loss_function(head)(tensor(y), tensor(params)))
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_gaussian_nll_equals_scipy():
    rng = np.random.default_rng(2)
    y, loc = rng.normal(size=(64, 3)) * 3, rng.normal(size=(64, 3)) * 3
    scale = rng.uniform(0.1, 5.0, size=(64, 3))
    params = np.stack([loc, scale], axis=-1)
    ours = numpy(heads.loss_function(heads.Head("gaussian"))(tensor(y), tensor(params)))
    expected = -stats.norm.logpdf(y, loc=loc, scale=scale).mean()
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_student_t_nll_equals_scipy():
    rng = np.random.default_rng(3)
    y, loc = rng.normal(size=(64, 3)) * 3, rng.normal(size=(64, 3)) * 3
    scale, df = rng.uniform(0.1, 5.0, size=(64, 3)), rng.uniform(2.01, 60.0, size=(64, 3))
    params = np.stack([loc, scale, df], axis=-1)
    ours = numpy(heads.loss_function(heads.Head("student_t"))(tensor(y), tensor(params)))
    expected = -stats.t.logpdf(y, df, loc=loc, scale=scale).mean()
    np.testing.assert_allclose(ours, expected, rtol=1e-5)


def test_a_point_head_has_no_likelihood():
    with pytest.raises(ConfigError, match="no likelihood"):
        heads.loss_function(heads.Head("point"))


def test_lgamma_matches_math_lgamma():
    """Relative 1e-6 over [1e-3, 1e3] in float64; lgamma is 0 at 1 and 2, where a relative
    error means nothing, hence the 1e-8 absolute floor (the docstring's error bound)."""
    x = np.concatenate([np.geomspace(1e-3, 1e3, 3001), [1.0, 2.0, 0.5, 1.5, 2.5]])
    expected = np.array([math.lgamma(v) for v in x])
    ours = numpy(heads._lgamma(ops.convert_to_tensor(x, dtype="float64")))
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-8)
    # float32, as training runs it: still a few ulps of max(1, |lgamma|).
    ours32 = numpy(heads._lgamma(tensor(x)))
    assert (np.abs(ours32 - expected) <= 1e-5 * np.maximum(1.0, np.abs(expected))).all()


# --- sampling from a head ------------------------------------------------------------------


def test_distribution_samples_follow_the_distribution():
    rng = np.random.default_rng(4)
    params = np.array([[[5.0, 2.0, 4.0], [-1.0, 0.5, 30.0]]])  # [1, H=2, C=3]
    gaussian = heads.Head("gaussian").sample(params[..., :2], 4000, rng)
    student = heads.Head("student_t").sample(params, 4000, rng)
    assert gaussian.shape == student.shape == (1, 2, 4000)
    for h in range(2):
        loc, scale, df = params[0, h]
        assert stats.kstest(gaussian[0, h], "norm", args=(loc, scale)).pvalue > 1e-3
        assert stats.kstest(student[0, h], "t", args=(df, loc, scale)).pvalue > 1e-3
    with pytest.raises(ConfigError, match="no distribution"):
        heads.Head("point").sample(params[..., 0], 3, rng)


def test_quantile_samples_stay_between_the_outer_quantiles_and_keep_the_median():
    head = heads.for_loss("quantile", (0.1, 0.25, 0.75, 0.9))
    params = np.array([[[0.0, 1.0, 0.5, 1.0, 0.5]]])  # quantiles -1.5, -1, 0, 1, 1.5
    values = head.quantile_values(params)[0, 0]
    np.testing.assert_allclose(values, [-1.5, -1.0, 0.0, 1.0, 1.5])
    draws = head.sample(params, 20_000, np.random.default_rng(5))[0, 0]
    assert values[0] <= draws.min() and draws.max() <= values[-1]
    assert abs(np.mean(draws <= 0.0) - 0.5) < 0.015


def test_quantile_samples_have_the_heads_quantiles():
    """The docstring's piecewise-linear inverse CDF through the quantiles, flat beyond the
    outer ones (the outer quantiles hold the tails' mass as atoms): for each q-quantile v,
    P(draw < v) <= q <= P(draw <= v)."""
    head = heads.for_loss("quantile", (0.1, 0.25, 0.75, 0.9))
    params = np.array([[[0.0, 1.0, 0.5, 1.0, 0.5]]])
    draws = head.sample(params, 20_000, np.random.default_rng(5))[0, 0]
    values = head.quantile_values(params)[0, 0]
    below = np.array([np.mean(draws < v - 1e-12) for v in values])
    at_or_below = np.array([np.mean(draws <= v + 1e-12) for v in values])
    quantiles = np.array(head.quantiles)
    assert np.all(below <= quantiles + 0.015) and np.all(quantiles <= at_or_below + 0.015)
    np.testing.assert_allclose(at_or_below[:-1], quantiles[:-1], atol=0.015)  # no atom inside


# --- spreads in original units: multiplied, never shifted ----------------------------------


def test_window_denormalization_shifts_locations_and_multiplies_spreads():
    rng = np.random.default_rng(6)
    forecast = rng.normal(size=(4, 2, 3))
    mean, std = rng.normal(size=(4, 1)), rng.uniform(0.5, 3.0, size=(4, 1))
    layer = WindowDenormalization(("location", "spread", "shape"))
    out = numpy(layer(tensor(forecast), tensor(np.concatenate([mean, std], axis=1))))
    expected = forecast.copy()
    expected[..., 0] = forecast[..., 0] * std + mean
    expected[..., 1] = forecast[..., 1] * std
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert WindowDenormalization.from_config(layer.get_config()).kinds == layer.kinds


@pytest.mark.parametrize("head", [heads.Head("student_t"), heads.for_loss("quantile")])
def test_a_window_norm_model_is_affine_equivariant(head):
    """An untrained lstm under window_norm: the target history a * y + b (covariates kept)
    gives locations a * loc + b, spreads a * spread, the same shapes."""
    _backend.seed_everything(0)
    model = models.build("lstm", 16, 2, 3, {"units": 8, "layers": 1}, window_norm=True, head=head)
    x = np.random.default_rng(7).normal(size=(6, 16, 2)).astype("float32")
    moved = x.copy()
    moved[:, :, 0] = 2.5 * x[:, :, 0] + 4.0
    params = _backend.predict(model, x).astype(np.float64)
    params_moved = _backend.predict(model, moved).astype(np.float64)
    kinds = np.array(head.kinds)
    expected = params.copy()
    expected[..., kinds == "location"] = 2.5 * params[..., kinds == "location"] + 4.0
    expected[..., kinds == "spread"] = 2.5 * params[..., kinds == "spread"]
    np.testing.assert_allclose(params_moved, expected, rtol=1e-4, atol=1e-4)


def test_to_original_multiplies_spreads_and_leaves_shapes():
    f = dc.Forecaster("y", loss="student_t")
    f.scaler_ = Scaler(mean=np.array([5e4, 1.0]), scale=np.array([1e3, 2.0]))
    scaled = np.array([[[0.5, 0.2, 7.0], [-1.0, 1.5, 2.5]]])
    np.testing.assert_allclose(
        f._to_original(scaled), [[[50_500.0, 200.0, 7.0], [49_000.0, 1500.0, 2.5]]]
    )


@pytest.fixture(scope="module")
def synthetic_small():
    return dc.datasets.synthetic(n_steps=1000, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("window_norm", [False, True])
def test_scale_is_multiplied_never_shifted(window_norm, synthetic_small):
    """The same data with the target times 1000 plus 5e4, fitted with the same seed: the
    scaled problem is the same, so the location maps by the same affine map and the scale is
    1000 times the small one's (a scale shifted by the mean would be off by 5e4)."""
    params = []
    for data in (synthetic_small, synthetic_small.assign(y=synthetic_small["y"] * 1000 + 5e4)):
        train, val, test = dc.split(data, val=0.15, test=0.2)
        f = dc.Forecaster(
            "y", lookback=24, horizon=2, model="nlinear", loss="gaussian", window_norm=window_norm
        )
        f.fit(train, validation=val, epochs=3, verbose=False)
        params.append(f._predict_params(f._input_windows(f._frame(test, "test"))))
    small, big = params
    assert (small[..., 1] > 0).all()
    np.testing.assert_allclose(big[..., 1], 1000 * small[..., 1], rtol=1e-5)
    np.testing.assert_allclose(big[..., 0], 1000 * small[..., 0] + 5e4, rtol=1e-7)


def noisy_series(n: int, sigma: float, seed: int = 0) -> pd.DataFrame:
    index = pd.date_range("2021-01-01", periods=n, freq="h")
    noise = np.random.default_rng(seed).normal(0.0, sigma, n)
    return pd.DataFrame({"y": 10 + np.sin(2 * np.pi * index.hour / 24) + noise}, index=index)


@pytest.mark.slow
def test_a_gaussian_head_recovers_the_noise_sigma():
    """y = 10 + sin(daily) + N(0, 2^2): the fitted sigma is the noise's (measured median
    2.08; a 24-lag linear forecast of a noisy sine adds ~6%), and it matches the spread of
    the model's own held-out errors."""
    train, val, test = dc.split(noisy_series(3000, 2.0), val=0.15, test=0.15)
    f = dc.Forecaster("y", lookback=24, model="nlinear", loss="gaussian", learning_rate=1e-2)
    f.fit(train, validation=val, epochs=20, verbose=False)
    frame = f._frame(test, "test")
    params = f._predict_params(f._input_windows(frame))[:-1, 0]  # [N, C]: those with an actual
    sigma = np.median(params[:, 1])
    np.testing.assert_allclose(sigma, 2.0, rtol=0.15)
    errors = test["y"].to_numpy()[24:] - params[:, 0]
    np.testing.assert_allclose(sigma, errors.std(), rtol=0.15)


# --- the baseline start with a head --------------------------------------------------------


@pytest.mark.parametrize(
    "head", [heads.Head("gaussian"), heads.Head("student_t"), heads.for_loss("quantile")]
)
def test_a_closed_gate_leaves_the_baseline_location_and_the_network_spreads(head):
    _backend.seed_everything(1)
    lookback, features, horizon = 12, 2, 3
    options = {"units": 8, "layers": 1}
    model = models.build(
        "lstm", lookback, features, horizon, options, baseline_start=True, head=head
    )
    rng = np.random.default_rng(8)
    coef, intercept = rng.normal(size=(horizon, lookback * features)), rng.normal(size=horizon)
    start.set_baseline(model, coef, intercept)
    x = rng.normal(size=(10, lookback, features)).astype("float32")
    gated = _backend.predict(model, x)
    start.close_gate(model)
    closed = _backend.predict(model, x)
    baseline = x.reshape(len(x), -1).astype(np.float64) @ coef.T + intercept  # [N, H]
    np.testing.assert_allclose(closed[..., 0], baseline, rtol=1e-5, atol=1e-5)
    assert not np.allclose(gated[..., 0], baseline, atol=1e-3)  # the network did move it
    np.testing.assert_array_equal(closed[..., 1:], gated[..., 1:])  # not gated
    assert (closed[..., 1:] > 0).all()
    if head.kind == "quantile":
        assert (np.diff(head.quantile_values(closed.astype(np.float64)), axis=-1) > 0).all()


@pytest.mark.slow
def test_a_head_that_loses_to_its_start_forecasts_the_naive_location():
    """A random walk and a far too high learning rate: the gate closes, the location is the
    last value of each window (the naive start), in original units; the scale stays >0."""
    steps = np.random.default_rng(0).normal(size=1200)
    index = pd.date_range("2020-01-01", periods=1200, freq="D")
    walk = pd.DataFrame({"y": 100 + np.cumsum(steps)}, index=index)
    train, val, test = dc.split(walk, val=0.15, test=0.15)
    f = dc.Forecaster(
        "y", lookback=20, horizon=3, units=8, layers=1, learning_rate=5.0, loss="gaussian"
    )
    f.fit(train, validation=val, epochs=3, verbose=False)
    assert f.start_["baseline"] == "naive" and f.start_["gate_closed"]
    frame = f._frame(test, "test")
    params = f._predict_params(f._input_windows(frame))
    last = frame["y"].to_numpy()[19:]
    np.testing.assert_allclose(params[..., 0], np.repeat(last[:, None], 3, axis=1), rtol=1e-7)
    assert (params[..., 1] > 0).all()
