"""The negative binomial head (heads.py) against independent oracles: its likelihood against
scipy.stats.nbinom, its samples' moments against mu and mu + alpha mu^2, its quantiles
against a cumulative sum of the probability mass function written out with math.lgamma, and
the mean scaling of counts (window_norm.py's "mean" mode) that maps its parameters back."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops
from scipy import stats

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models.table import table
from deepcast.models.window_norm import WindowDenormalization, WindowNormalization
from deepcast.training import LOSSES

NB = heads.Head("negative_binomial")


def tensor(a, dtype="float32"):
    return ops.convert_to_tensor(np.asarray(a, dtype=dtype))


def numpy(t) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(t), dtype=np.float64)


def log_pmf(y: int, mu: float, alpha: float) -> float:
    """log P(Y = y) of the negative binomial with mean mu and variance mu + alpha mu^2,
    written out: Gamma(y + n) / (Gamma(n) y!) p^n (1 - p)^y, n = 1 / alpha, p = n / (n + mu)."""
    n = 1.0 / alpha
    return (
        math.lgamma(y + n)
        - math.lgamma(n)
        - math.lgamma(y + 1)
        + n * math.log(n / (n + mu))
        + y * math.log(mu / (n + mu))
    )


def test_the_negative_binomial_head():
    assert heads.for_loss("negative_binomial") == NB
    assert (NB.channels, NB.kinds, NB.output) == (2, ("rate", "dispersion"), "counts")
    assert NB.counts and not heads.Head("gaussian").counts
    assert heads.from_json(NB.to_json()) == NB
    assert "negative_binomial" in LOSSES
    n, p = heads.nbinom_parameters(np.array([40.0, 0.25]))
    assert stats.nbinom.mean(n, p) == pytest.approx(40.0)
    assert stats.nbinom.var(n, p) == pytest.approx(40.0 + 0.25 * 40.0**2)


def test_the_head_layer_gives_a_positive_mean_and_dispersion():
    raw = np.array([[-30.0, -60.0, 0.0, 5.0, 12.0, 12.0]])  # [B, H * C], H = 3
    params = numpy(heads.HeadLayer(3, NB.kinds)(tensor(raw)))  # [1, 3, 2]
    assert (params > 0).all()
    np.testing.assert_allclose(
        params[0, :, 0], np.log1p(np.exp(raw[0, ::2])) + heads.MIN_RATE, rtol=1e-6
    )
    np.testing.assert_allclose(
        params[0, :, 1], np.log1p(np.exp(raw[0, 1::2] - raw[0, ::2])) + heads.MIN_SPREAD, rtol=1e-6
    )


GRID = [
    (y, mu, alpha)
    for y in (0, 1, 3, 17, 40, 250, 5000)
    for mu in (0.05, 1.0, 40.0, 3000.0)
    for alpha in (1e-4, 0.05, 1.0, 4.0)
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nll_equals_scipy_logpmf_on_a_grid(dtype):
    y, mu, alpha = (np.array(v, dtype=np.float64)[:, None] for v in zip(*GRID))  # [N, 1]
    params = np.stack([mu, alpha], axis=-1)  # [N, 1, 2]
    loss = heads.loss_function(NB)
    ours = np.array(
        [numpy(loss(tensor(y[i], dtype), tensor(params[i], dtype))) for i in range(len(y))]
    )
    expected = -stats.nbinom.logpmf(y[:, 0], *heads.nbinom_parameters(params[:, 0]))
    oracle = -np.array([log_pmf(*point) for point in GRID])
    np.testing.assert_allclose(expected, oracle, rtol=1e-9, atol=1e-9)  # the oracles agree
    if dtype == "float64":
        np.testing.assert_allclose(ours, expected, rtol=1e-7, atol=1e-7)
    else:  # training's precision: float32 rounding of terms as large as y log(mu)
        size = 1.0 + y[:, 0] * np.log1p(y[:, 0]) + mu[:, 0]
        assert (np.abs(ours - expected) <= 2e-6 * size).all(), np.abs(ours - expected) / size


def test_nll_stays_accurate_for_large_counts_near_poisson():
    """n = 1 / alpha = 1e6 and y = 1e5: lgamma(y + n) and lgamma(n) are each about 1.3e7,
    which float32 holds to about 1; their difference is taken term by term instead."""
    y, mu, alpha = 1e5, 1e5, 1e-6
    ours = numpy(heads.loss_function(NB)(tensor([[y]]), tensor([[[mu, alpha]]])))
    assert ours == pytest.approx(-log_pmf(int(y), mu, alpha), abs=0.05)


def test_lgamma_difference_matches_math_lgamma():
    x = np.array([1e-3, 0.5, 1.0, 7.5, 100.0, 1e4, 1e6, 1e8])
    for y in (0.0, 1.0, 12.0, 3e3):
        ours = numpy(
            heads._lgamma_difference(tensor(x, "float64"), tensor(np.full_like(x, y), "float64"))
        )
        expected = [math.lgamma(v + y) - math.lgamma(v) for v in x]
        np.testing.assert_allclose(ours, expected, rtol=1e-8, atol=1e-8)


def test_samples_are_counts_with_the_heads_mean_and_variance():
    params = np.array([[[40.0, 0.1], [3.0, 2.0], [500.0, 0.01], [0.5, 1e-4]]])  # [1, H=4, 2]
    draws = NB.sample(params, 40_000, np.random.default_rng(5))
    assert draws.shape == (1, 4, 40_000)
    assert (draws >= 0).all() and (draws == np.round(draws)).all()
    mu, alpha = params[0, :, 0], params[0, :, 1]
    variance = mu + alpha * mu**2
    standard_error = np.sqrt(variance / 40_000)
    assert (np.abs(draws[0].mean(axis=1) - mu) < 5 * standard_error).all()
    np.testing.assert_allclose(draws[0].var(axis=1), variance, rtol=0.06)
    np.testing.assert_array_equal(draws, NB.sample(params, 40_000, np.random.default_rng(5)))


@pytest.mark.parametrize("probability", [0.05, 0.1, 0.5, 0.9, 0.95])
def test_quantiles_are_the_smallest_counts_reaching_the_probability(probability):
    params = np.array([[40.0, 0.1], [3.0, 2.0], [500.0, 0.01], [0.5, 1e-4]])
    ours = NB.quantile(params, probability)
    for (mu, alpha), q in zip(params, ours):
        cdf = np.cumsum([math.exp(log_pmf(k, mu, alpha)) for k in range(int(q) + 1)])
        assert cdf[-1] >= probability - 1e-12
        assert len(cdf) == 1 or cdf[-2] < probability


def test_mean_scaling_divides_counts_by_one_plus_their_mean_and_maps_parameters_back():
    window = np.zeros((2, 5, 3))
    window[0, :3, 0], window[1, :3, 0] = [0.0, 0.0, 0.0], [10.0, 20.0, 30.0]
    window[:, 3:, 0] = 999.0  # known-future rows: not read
    window[..., 1:] = 7.0
    layer = WindowNormalization(3, mode="mean")
    scaled, stats_ = (numpy(t) for t in layer(tensor(window)))
    np.testing.assert_allclose(stats_, [[0.0, 1.0], [0.0, 21.0]])
    np.testing.assert_allclose(scaled[1, :3, 0], [10 / 21, 20 / 21, 30 / 21], rtol=1e-6)
    np.testing.assert_array_equal(scaled[..., 1:], window[..., 1:])
    assert WindowNormalization.from_config(layer.get_config()).mode == "mean"
    assert "mode" not in WindowNormalization(3).get_config()  # older files unchanged
    params = np.array([[[2.0, 0.5]], [[2.0, 0.5]]])  # mu', alpha'
    out = numpy(WindowDenormalization(NB.kinds)(tensor(params), tensor(stats_)))
    np.testing.assert_allclose(out[:, 0], [[2.0, 0.5], [42.0, 0.5 / np.sqrt(21.0)]], rtol=1e-6)


def test_only_a_family_with_counts_carries_the_head():
    with pytest.raises(ConfigError, match="no counts output"):
        dc.models.build("lstm", 8, 2, 2, head=NB)
    with pytest.raises(ConfigError, match="window_norm"):
        dc.Forecaster(
            "y", model="deepar", loss="negative_binomial", window_norm=True
        ).check_params()
    assert "outputs distribution, counts" in table()
