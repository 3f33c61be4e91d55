"""Probabilistic scores against hand-derived values, scipy, brute force and properties."""

import doctest
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deepcast.errors import ConfigError, DataError
from deepcast.evaluation import probabilistic
from deepcast.evaluation.probabilistic import (
    coverage,
    crps_gaussian,
    crps_quantiles,
    crps_samples,
    empirical_quantile_intervals,
    gaussian_nll,
    interval_scores,
    level_quantiles,
    mean_width,
    pinball,
    pinball_per_quantile,
    student_t_nll,
    winkler,
)

PROPERTY = settings(max_examples=50, deadline=None)
values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def brute_force_crps(y: float, x: np.ndarray) -> float:
    """E|X - y| - E|X - X'| / 2 over all M^2 pairs, the O(M^2) definition."""
    return float(np.mean(np.abs(x - y)) - 0.5 * np.mean(np.abs(x[:, None] - x[None, :])))


def test_docstring_examples_run():
    result = doctest.testmod(probabilistic)
    assert result.attempted > 10
    assert result.failed == 0


# ------------------------------------------------------------------ levels and quantiles


def test_level_quantiles():
    assert level_quantiles(80) == (0.1, 0.9)
    assert level_quantiles(95) == pytest.approx((0.025, 0.975))
    assert level_quantiles(97.5) == pytest.approx((0.0125, 0.9875))


@pytest.mark.parametrize("level", [0, 100, -5, 150, math.nan, True, "80"])
def test_level_quantiles_rejects_levels_outside_0_100(level):
    with pytest.raises(ConfigError, match="level"):
        level_quantiles(level)


def test_pinball_hand_values():
    y = np.array([0.0, 10.0])
    q_pred = np.array([[1.0, 2.0], [4.0, 12.0]])
    # row 0: u = -1 at 0.2 -> 0.8 * 1;  u = -2 at 0.7 -> 0.3 * 2
    # row 1: u = +6 at 0.2 -> 0.2 * 6;  u = -2 at 0.7 -> 0.3 * 2
    per_q = pinball_per_quantile(y, q_pred, [0.2, 0.7])
    np.testing.assert_allclose(per_q, [(0.8 + 1.2) / 2, (0.6 + 0.6) / 2])
    assert pinball(y, q_pred, [0.2, 0.7]) == pytest.approx(0.8)
    assert crps_quantiles(y, q_pred, [0.2, 0.7]) == pytest.approx(1.6)


def test_pinball_on_two_dimensional_targets():
    y = np.zeros((2, 3))
    q_pred = np.ones((2, 3, 1))  # every error is -1 at level 0.25: 0.75 each
    assert pinball(y, q_pred, [0.25]) == pytest.approx(0.75)


@PROPERTY
@given(st.lists(st.tuples(values, values), min_size=1, max_size=20))
def test_pinball_at_median_is_half_the_mae(pairs):
    y, f = np.array(pairs).T
    assert pinball(y, f[:, None], [0.5]) == pytest.approx(0.5 * np.mean(np.abs(y - f)), abs=1e-9)


def test_crps_quantiles_approaches_crps_gaussian():
    rng = np.random.default_rng(1)
    y = rng.normal(0.0, 1.5, size=(50, 2))
    mu, sigma = 0.3, 1.2
    tau = np.arange(1, 100) / 100
    q_pred = np.broadcast_to(mu + sigma * stats.norm.ppf(tau), y.shape + (99,))
    assert crps_quantiles(y, q_pred, tau) == pytest.approx(crps_gaussian(y, mu, sigma), rel=0.02)


# ------------------------------------------------------------------ CRPS of samples


def test_crps_samples_hand_values():
    samples = np.array([[[0.0, 1.0, 2.0], [2.0, 0.0, 1.0]]])  # S = (1, 2), M = 3, any order
    y = np.array([[0.0, 3.0]])
    # E|X - X'| = 2 * (1 + 2 + 1) / 9 = 8/9 for both; E|X - y| = 1 and 2
    # so 1 - 4/9 = 5/9 and 2 - 4/9 = 14/9; the same as integral of (F - 1{y <= z})^2.
    assert crps_samples(y, samples) == pytest.approx((5 / 9 + 14 / 9) / 2)


def test_crps_of_one_sample_is_the_absolute_error():
    assert crps_samples(np.array([1.0, 4.0]), np.array([[3.0], [4.5]])) == pytest.approx(1.25)


@PROPERTY
@given(st.lists(st.tuples(values, values), min_size=1, max_size=10), st.integers(1, 30))
def test_crps_of_a_point_mass_is_the_mae(pairs, m):
    y, f = np.array(pairs).T
    samples = np.repeat(f[:, None], m, axis=1)
    assert crps_samples(y, samples) == pytest.approx(np.mean(np.abs(y - f)), rel=1e-9, abs=1e-9)


@PROPERTY
@given(values, st.lists(values, min_size=1, max_size=40))
def test_crps_samples_matches_brute_force_and_is_non_negative(y, xs):
    x = np.array(xs)
    score = crps_samples(np.array([y]), x[None, :])
    assert score >= 0.0
    assert score == pytest.approx(brute_force_crps(y, x), rel=1e-9, abs=1e-7)


def test_crps_samples_brute_force_on_random_batches():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(4, 3))
    samples = rng.standard_t(3, size=(4, 3, 57))
    expected = np.mean(
        [brute_force_crps(y[i, j], samples[i, j]) for i in range(4) for j in range(3)]
    )
    assert crps_samples(y, samples) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------ Gaussian and Student t


def test_crps_gaussian_known_value():
    standard = 2 * stats.norm.pdf(0.0) - 1 / math.sqrt(math.pi)  # = (sqrt(2) - 1) / sqrt(pi)
    assert standard == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi))
    assert crps_gaussian(np.array([0.0]), 0.0, 1.0) == pytest.approx(standard, rel=1e-12)
    # location-scale: CRPS(N(mu, s^2), mu + s z) = s * CRPS(N(0, 1), z)
    assert crps_gaussian(np.array([5.0]), np.array([5.0]), 3.0) == pytest.approx(3 * standard)


@pytest.mark.parametrize("y_value", [0.0, 1.5, -3.0])
def test_crps_gaussian_matches_crps_of_many_draws(y_value):
    rng = np.random.default_rng(3)
    mu, sigma = 2.0, 0.5
    draws = stats.norm.rvs(mu, sigma, size=(1, 200_000), random_state=rng)
    y = np.array([mu + sigma * y_value])
    assert crps_gaussian(y, mu, sigma) == pytest.approx(crps_samples(y, draws), rel=0.01)


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(30, 2))
    mu = rng.normal(size=(30, 2))
    sigma = rng.uniform(0.2, 3.0, size=(30, 2))
    expected = -np.mean(stats.norm.logpdf(y, loc=mu, scale=sigma))
    assert gaussian_nll(y, mu, sigma) == pytest.approx(expected, rel=1e-12)
    assert gaussian_nll(y, 0.5, 2.0) == pytest.approx(
        -np.mean(stats.norm.logpdf(y, loc=0.5, scale=2.0)), rel=1e-12
    )


@pytest.mark.parametrize("df", [0.7, 1.0, 3.0, 30.0])
def test_student_t_nll_matches_scipy(df):
    rng = np.random.default_rng(5)
    y = rng.standard_t(4, size=40) * 2.0
    mu = rng.normal(size=40)
    sigma = rng.uniform(0.2, 3.0, size=40)
    expected = -np.mean(stats.t.logpdf(y, df, loc=mu, scale=sigma))
    assert student_t_nll(y, mu, sigma, df) == pytest.approx(expected, rel=1e-10)


def test_student_t_nll_with_per_entry_df_and_its_gaussian_limit():
    y, mu, sigma = np.array([0.3, -2.0]), np.array([0.0, 1.0]), np.array([1.0, 2.0])
    df = np.array([2.0, 9.0])
    expected = -np.mean(stats.t.logpdf(y, df, loc=mu, scale=sigma))
    assert student_t_nll(y, mu, sigma, df) == pytest.approx(expected, rel=1e-10)
    assert student_t_nll(y, mu, sigma, 1e7) == pytest.approx(gaussian_nll(y, mu, sigma), rel=1e-5)


# ------------------------------------------------------------------ intervals


def test_coverage_width_winkler_hand_values():
    y = np.array([-1.0, 0.0, 0.5, 1.0, 2.5])
    lo, hi = np.zeros(5), np.ones(5)
    assert coverage(y, lo, hi) == pytest.approx(3 / 5)  # bounds count as covered
    assert mean_width(lo, np.array([1.0, 1.0, 2.0, 3.0, 3.0])) == pytest.approx(2.0)
    # level 90: alpha = 0.1, penalty 2 / alpha = 20 per unit outside; widths are 1
    assert winkler(y, lo, hi, level=90) == pytest.approx((21 + 1 + 1 + 1 + 31) / 5)


@PROPERTY
@given(
    st.lists(
        st.tuples(values, st.floats(0, 100), st.floats(0, 1)),
        min_size=1,
        max_size=20,
    ),
    st.floats(1, 99),
)
def test_winkler_is_the_width_when_everything_is_covered(rows, level):
    lo, width, position = np.array(rows).T
    hi = lo + width
    y = np.clip(lo + position * width, lo, hi)  # rounding must not push y outside
    assert coverage(y, lo, hi) == 1.0
    assert winkler(y, lo, hi, level) == pytest.approx(mean_width(lo, hi))


def test_interval_scores_keys_and_values():
    y = np.array([0.0, 2.0])
    intervals = {
        80: (np.array([-1.0, -1.0]), np.array([1.0, 1.0])),
        97.5: (np.array([-2.0, -2.0]), np.array([3.0, 3.0])),
        95.0: (np.array([-1.5, -1.5]), np.array([1.5, 1.5])),
    }
    scores = interval_scores(y, intervals)
    assert list(scores) == [
        "coverage_80",
        "width_80",
        "winkler_80",
        "coverage_97.5",
        "width_97.5",
        "winkler_97.5",
        "coverage_95",
        "width_95",
        "winkler_95",
    ]
    assert scores["coverage_80"] == 0.5
    assert scores["width_80"] == 2.0
    assert scores["winkler_80"] == pytest.approx((2 + (2 + 10 * 1)) / 2)
    assert scores["coverage_97.5"] == 1.0
    assert scores["winkler_97.5"] == pytest.approx(5.0)
    assert scores["winkler_95"] == pytest.approx((3 + (3 + 40 * 0.5)) / 2)
    assert all(type(v) is float for v in scores.values())


def test_empirical_quantile_intervals_reproduce_np_quantile_per_step():
    rng = np.random.default_rng(6)
    point = rng.normal(size=(5, 3))
    residuals = rng.normal(size=(40, 3)) * np.array([1.0, 2.0, 5.0])
    bounds = empirical_quantile_intervals(point, residuals, [80, 95])
    assert list(bounds) == [80, 95]
    for level, (a, b) in [(80, (0.1, 0.9)), (95, (0.025, 0.975))]:
        lo, hi = bounds[level]
        assert lo.shape == hi.shape == (5, 3)
        for h in range(3):
            np.testing.assert_allclose(lo[:, h], point[:, h] + np.quantile(residuals[:, h], a))
            np.testing.assert_allclose(hi[:, h], point[:, h] + np.quantile(residuals[:, h], b))


def test_empirical_quantile_intervals_cover_the_nominal_fraction_of_fresh_errors():
    rng = np.random.default_rng(7)
    scale = np.array([1.0, 3.0])  # errors grow with the step
    residuals = rng.normal(size=(20_000, 2)) * scale
    point = rng.normal(size=(20_000, 2)) * 10
    actual = point + rng.normal(size=(20_000, 2)) * scale
    bounds = empirical_quantile_intervals(point, residuals, [80, 95])
    scores = interval_scores(actual, bounds)
    assert 0.78 <= scores["coverage_80"] <= 0.82
    assert 0.93 <= scores["coverage_95"] <= 0.97
    # the width of a normal 95% interval is 2 * 1.96 * scale, averaged over the two steps
    assert scores["width_95"] == pytest.approx(2 * 1.96 * scale.mean(), rel=0.03)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: pinball(np.zeros(3), np.zeros((3, 2, 1)), [0.5]), "q_pred"),
        (lambda: pinball(np.zeros(3), np.zeros((3, 2)), [0.5]), "quantiles"),
        (lambda: crps_samples(np.zeros(3), np.zeros(3)), "samples"),
        (lambda: crps_samples(np.zeros((3, 1)), np.zeros((3, 5))), "samples"),
        (lambda: crps_gaussian(np.zeros(3), np.zeros((3, 1)), 1.0), "mu"),
        (lambda: gaussian_nll(np.zeros(3), 0.0, np.ones(2)), "sigma"),
        (lambda: student_t_nll(np.zeros(3), 0.0, 1.0, np.ones((3, 1))), "df"),
        (lambda: coverage(np.zeros(3), np.zeros((3, 1)), np.ones(3)), "lo"),
        (lambda: winkler(np.zeros(3), np.zeros(3), np.ones((1, 3)), 80), "hi"),
        (lambda: mean_width(np.zeros(3), np.ones(4)), "hi"),
        (lambda: empirical_quantile_intervals(np.zeros(3), np.zeros((4, 3)), [80]), "point"),
        (
            lambda: empirical_quantile_intervals(np.zeros((2, 3)), np.zeros((4, 2)), [80]),
            "residuals",
        ),
    ],
)
def test_shape_mismatches_raise_data_error_naming_the_argument(call, name):
    with pytest.raises(DataError, match=name):
        call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: pinball(np.array([]), np.zeros((0, 1)), [0.5]), "y"),
        (lambda: crps_samples(np.zeros(2), np.zeros((2, 0))), "samples"),
        (lambda: mean_width(np.array([]), np.array([])), "lo"),
        (lambda: pinball(np.array([np.nan]), np.zeros((1, 1)), [0.5]), "y"),
        (lambda: pinball(np.zeros(1), np.array([[np.inf]]), [0.5]), "q_pred"),
        (lambda: crps_samples(np.zeros(1), np.array([[0.0, np.nan]])), "samples"),
        (lambda: crps_gaussian(np.zeros(1), np.nan, 1.0), "mu"),
        (lambda: gaussian_nll(np.zeros(1), 0.0, np.inf), "sigma"),
        (lambda: student_t_nll(np.zeros(1), 0.0, 1.0, np.nan), "df"),
        (lambda: coverage(np.zeros(1), np.array([np.nan]), np.ones(1)), "lo"),
        (lambda: empirical_quantile_intervals(np.zeros((1, 1)), [[np.nan]], [80]), "residuals"),
    ],
)
def test_empty_or_non_finite_input_raises_data_error_naming_the_argument(call, name):
    with pytest.raises(DataError, match=rf"^{name}\b"):
        call()


def test_crossed_bounds_raise_data_error():
    with pytest.raises(DataError, match="lo must not exceed hi"):
        coverage(np.zeros(2), np.array([0.0, 2.0]), np.array([1.0, 1.0]))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: crps_gaussian(np.zeros(2), 0.0, 0.0), "sigma"),
        (lambda: gaussian_nll(np.zeros(2), 0.0, np.array([1.0, -1.0])), "sigma"),
        (lambda: student_t_nll(np.zeros(2), 0.0, 1.0, 0.0), "df"),
        (lambda: pinball(np.zeros(1), np.zeros((1, 1)), [1.0]), "quantiles"),
        (lambda: pinball(np.zeros(1), np.zeros((1, 2)), [0.0, 0.5]), "quantiles"),
        (lambda: crps_quantiles(np.zeros(1), np.zeros((1, 1)), [[0.5]]), "quantiles"),
        (lambda: winkler(np.zeros(1), np.zeros(1), np.ones(1), 100), "level"),
        (lambda: interval_scores(np.zeros(1), {}), "intervals"),
        (lambda: interval_scores(np.zeros(1), {0: (np.zeros(1), np.ones(1))}), "level"),
        (lambda: empirical_quantile_intervals(np.zeros((1, 1)), np.zeros((2, 1)), []), "levels"),
        (lambda: empirical_quantile_intervals(np.zeros((1, 1)), np.zeros((2, 1)), [120]), "level"),
    ],
)
def test_invalid_parameters_raise_config_error_naming_the_argument(call, name):
    with pytest.raises(ConfigError, match=rf"^{name}\b"):
        call()


def test_an_infinite_bound_covers_and_has_infinite_width():
    """An uncalibrated conformal band is infinite: it covers every point, its width and
    Winkler score are inf; NaN bounds are still refused."""
    y = np.array([0.0, 5.0, -3.0])
    lo, hi = np.array([-1.0, -np.inf, -1.0]), np.array([1.0, np.inf, 1.0])
    assert probabilistic.coverage(y, lo, hi) == pytest.approx(2 / 3)
    assert probabilistic.mean_width(lo, hi) == np.inf
    assert probabilistic.winkler(y, lo, hi, 80) == np.inf
    with pytest.raises(DataError, match="lo has 1 nan"):
        probabilistic.coverage(y, np.array([np.nan, 0.0, 0.0]), hi)
