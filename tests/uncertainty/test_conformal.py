"""Conformal intervals against MAPIE 1.6 (the independent oracle) and hand-derived values."""

import json
import math
import warnings

import numpy as np
import pytest
from mapie.conformity_scores import AbsoluteConformityScore
from mapie.regression import (
    ConformalizedQuantileRegressor,
    SplitConformalRegressor,
    TimeSeriesRegressor,
)
from sklearn.base import BaseEstimator, RegressorMixin

from deepcast.errors import ConfigError, DataError
from deepcast.uncertainty.conformal import AdaptiveConformal, SplitConformal


class _Column(RegressorMixin, BaseEstimator):
    """A "prefit" regressor whose prediction is one column of X: MAPIE then scores exactly the
    point forecasts we hand it, with no model of its own in between."""

    def __init__(self, column: int = 0):
        self.column = column

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.asarray(X, dtype=np.float64)[:, self.column]


def _covered(lo, hi, y):
    return (lo <= y) & (y <= hi)


def _bounds(aci, point):
    """The one-step interval of a horizon-1 ACI as two floats."""
    lo, hi = aci.interval([point])
    return float(lo[0]), float(hi[0])


# --- split conformal and CQR vs MAPIE -------------------------------------------------------


def test_split_conformal_equals_mapie_per_step():
    rng = np.random.default_rng(1)
    n, m, sd = 157, 40, np.array([1.0, 2.0, 3.0])  # each step its own error scale
    y = rng.normal(size=(n, 3)) * sd
    point = y + rng.standard_t(3, size=(n, 3)) * sd
    point_test = rng.normal(size=(m, 3))
    ours = SplitConformal.fit(y, point)
    assert (ours.n, ours.horizon) == (n, 3)
    for h in range(3):
        x_cal = point[:, [h]]
        mapie = SplitConformalRegressor(
            _Column().fit(x_cal, y[:, h]), confidence_level=[0.8, 0.95], prefit=True
        ).conformalize(x_cal, y[:, h])
        _, bounds = mapie.predict_interval(point_test[:, [h]])  # (m, 2, n_levels)
        for j, level in enumerate((80, 95)):
            lo, hi = ours.interval(point_test, level)
            np.testing.assert_allclose(lo[:, h], bounds[:, 0, j], rtol=0, atol=1e-8)
            np.testing.assert_allclose(hi[:, h], bounds[:, 1, j], rtol=0, atol=1e-8)
    # The steps really were calibrated apart: the far step is the widest.
    q = ours.quantile(95)
    assert q[0] < q[1] < q[2]


def test_cqr_equals_mapie_with_symmetric_correction():
    """MAPIE's `symmetric_correction=True` is Romano et al.'s score max(lo - y, y - hi)."""
    rng = np.random.default_rng(2)

    def make(k):
        point = rng.normal(size=k)
        y = point + 1.5 * rng.normal(size=k)
        half = np.exp(0.3 * rng.normal(size=k))  # a band too narrow for sd 1.5
        return y, np.column_stack([point, point - half, point + half])

    y, x = make(131)
    y_test, x_test = make(30)
    for level in (80, 95):
        models = [_Column(1).fit(x, y), _Column(2).fit(x, y), _Column(0).fit(x, y)]
        mapie = ConformalizedQuantileRegressor(
            models, confidence_level=level / 100, prefit=True
        ).conformalize(x, y)
        _, bounds = mapie.predict_interval(x_test, symmetric_correction=True)
        ours = SplitConformal.fit(
            y[:, None], x[:, [0]], quantile_pairs={level: (x[:, [1]], x[:, [2]])}
        )
        lo, hi = ours.interval(x_test[:, [0]], level, lo=x_test[:, [1]], hi=x_test[:, [2]])
        np.testing.assert_allclose(lo[:, 0], bounds[:, 0, 0], rtol=0, atol=1e-8)
        np.testing.assert_allclose(hi[:, 0], bounds[:, 1, 0], rtol=0, atol=1e-8)
        assert ours.quantile(level, cqr=True)[0] > 0  # the too-narrow band was widened


# --- ACI vs MAPIE ---------------------------------------------------------------------------


def test_aci_equals_mapie_online():
    """Horizon 1, processed online, against `TimeSeriesRegressor(method="aci", cv="prefit")`.

    Per origin, MAPIE is driven as its docs intend: `predict` (the issued interval),
    `adapt_conformal_inference` (alpha_t update), then `update` (the residual joins the
    scores). Where the definitions differ, the configuration makes them coincide, and the test
    asserts that it did:

    - MAPIE's default score for time series is the signed residual with separate lower and
      upper quantiles (sym=False); ours is the absolute residual, so MAPIE gets
      `AbsoluteConformityScore()` (sym=True), the same score.
    - MAPIE's `update` keeps a fixed-size set (it drops the oldest score for each new one),
      so ours runs with `window=n`; our default (window=None) lets the set grow.
    - MAPIE clips alpha_t to [0, 1] and, with the symmetric score, raises instead of giving an
      infinite interval when ceil((n+1)(1-alpha_t)) > n; ours keeps the paper's unclipped
      alpha_t (inf interval at <= 0, zero width at >= 1). Here alpha_t stays inside
      [1/(n+1), 1), where none of that applies.
    - MAPIE counts an actual exactly on a bound as a miss (strict inequalities), ours as
      covered (the closed interval of the paper). No actual lands on a bound here.
    """
    rng = np.random.default_rng(4)
    n, steps, gamma = 200, 400, 0.01
    y_cal, point_cal = rng.normal(size=n), np.zeros(n)
    y = rng.normal(size=steps) * np.where(np.arange(steps) < steps // 2, 1.0, 2.0)
    point = 0.1 * rng.normal(size=steps)

    mapie = TimeSeriesRegressor(
        _Column().fit(point_cal[:, None], y_cal),
        method="aci",
        cv="prefit",
        conformity_score=AbsoluteConformityScore(),
    ).fit(point_cal[:, None], y_cal)
    ours = AdaptiveConformal(np.abs(y_cal - point_cal)[:, None], level=90, gamma=gamma, window=n)

    expected_lo, expected_hi, expected_alpha, lo, hi, alpha = [], [], [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MAPIE's update() warns about a changed behaviour
        for t in range(steps):
            x_t, y_t = point[[t]][:, None], y[[t]]
            _, bounds = mapie.predict(x_t, confidence_level=0.9, allow_infinite_bounds=True)
            mapie.adapt_conformal_inference(x_t, y_t, gamma=gamma, confidence_level=0.9)
            mapie.update(x_t, y_t)
            expected_lo.append(bounds[0, 0, 0])
            expected_hi.append(bounds[0, 1, 0])
            expected_alpha.append(mapie.current_alpha[0.1])

            lo_t, hi_t = ours.interval(point[[t]])
            ours.update(y_t, point[[t]])
            lo.append(lo_t[0])
            hi.append(hi_t[0])
            alpha.append(ours.alpha_t[0])

    np.testing.assert_allclose(lo, expected_lo, rtol=0, atol=1e-8)
    np.testing.assert_allclose(hi, expected_hi, rtol=0, atol=1e-8)
    np.testing.assert_allclose(alpha, expected_alpha, rtol=0, atol=1e-12)
    # The comparable region held, and alpha_t moved enough for the comparison to mean something.
    assert 1 / (n + 1) <= min(alpha) < 0.05 and max(alpha) < 1
    assert not np.isin(y, np.concatenate([lo, hi])).any()

    # `rolling` on the same series is the same online walk.
    again = AdaptiveConformal(np.abs(y_cal - point_cal)[:, None], level=90, gamma=gamma, window=n)
    lo_r, hi_r = again.rolling(y[:, None], point[:, None])
    np.testing.assert_array_equal(lo_r[:, 0], lo)
    np.testing.assert_array_equal(hi_r[:, 0], hi)
    np.testing.assert_array_equal(again.alpha_t, ours.alpha_t)


# --- coverage -------------------------------------------------------------------------------


def test_split_conformal_coverage_on_gaussian_noise():
    rng = np.random.default_rng(3)
    sd = np.array([1.0, 2.0])
    y_cal, y_test = rng.normal(size=(20_000, 2)) * sd, rng.normal(size=(20_000, 2)) * sd
    sc = SplitConformal.fit(y_cal, np.zeros_like(y_cal))
    for level in (80, 95):
        lo, hi = sc.interval(np.zeros_like(y_test), level)
        coverage = _covered(lo, hi, y_test).mean(axis=0)
        assert np.all(np.abs(100 * coverage - level) < 1.0), (level, coverage)


@pytest.mark.parametrize("window", [None, 500])
def test_aci_keeps_coverage_when_the_noise_doubles(window):
    rng = np.random.default_rng(5)
    n, steps = 2_000, 20_000
    y_cal = rng.normal(size=(n, 2))
    y = rng.normal(size=(steps, 2)) * np.where(np.arange(steps) < steps // 2, 1.0, 2.0)[:, None]
    point = np.zeros_like(y)

    lo, hi = SplitConformal.fit(y_cal, np.zeros_like(y_cal)).interval(point, 90)
    split_coverage = _covered(lo, hi, y).mean(axis=0)
    assert np.all(100 * split_coverage < 80)  # calibrated on the calm half: under-covers

    aci = AdaptiveConformal(np.abs(y_cal), level=90, gamma=0.005, window=window)
    lo, hi = aci.rolling(y, point)
    aci_coverage = _covered(lo, hi, y).mean(axis=0)
    assert np.all(np.abs(100 * aci_coverage - 90) < 1.5), aci_coverage


# --- finite-sample rank, CQR by hand, ACI by hand -------------------------------------------


def test_rank_beyond_n_gives_an_infinite_interval():
    scores = np.arange(1.0, 10.0)[:, None]  # n = 9 scores 1..9
    sc = SplitConformal.fit(scores, np.zeros_like(scores))
    assert sc.quantile(80)[0] == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert sc.quantile(90)[0] == 9.0  # ceil(10 * 0.9) = 9 = n: the largest
    assert sc.quantile(95)[0] == math.inf  # ceil(10 * 0.95) = 10 > n
    lo, hi = sc.interval(np.array([[3.0]]), 95)
    assert (lo[0, 0], hi[0, 0]) == (-math.inf, math.inf)
    nineteen = np.arange(1.0, 20.0)[:, None]  # n = 19: ceil(20 * 0.95) = 19, finite
    assert SplitConformal.fit(nineteen, np.zeros_like(nineteen)).quantile(95)[0] == 19.0


def test_cqr_narrows_and_widens_by_hand():
    # Level 50, n = 3: the ceil(4 * 0.5) = 2nd smallest score.
    y = np.array([[0.0, 5.0], [0.0, 3.0], [0.0, 1.0]])
    lo = np.array([[-2.0, 0.0], [-3.0, 0.0], [-1.0, 0.0]])
    hi = np.array([[2.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    # Step 1 scores max(lo - y, y - hi): -2, -1, -1 -> q = -1, the band is too wide.
    # Step 2 scores: max(-5, 4) = 4, max(-3, 2) = 2, max(-1, 0) = 0 -> q = 2, too narrow.
    for sc in (
        SplitConformal.fit(y, y, quantile_pairs={50: (lo, hi)}),
        SplitConformal.fit(y, y, lower=lo, upper=hi),
    ):
        np.testing.assert_array_equal(sc.quantile(50, cqr=True), [-1.0, 2.0])
        new_lo, new_hi = sc.interval(np.zeros((1, 2)), 50, lo=[[0.0, 0.0]], hi=[[10.0, 10.0]])
        np.testing.assert_array_equal(new_lo, [[1.0, -2.0]])
        np.testing.assert_array_equal(new_hi, [[9.0, 12.0]])
    # Without lo/hi, the absolute scores (all zero here) are used.
    abs_lo, abs_hi = sc.interval(np.ones((1, 2)), 50)
    np.testing.assert_array_equal(abs_lo, [[1.0, 1.0]])
    np.testing.assert_array_equal(abs_hi, [[1.0, 1.0]])


def test_aci_alpha_below_zero_is_infinite_and_above_one_is_zero_width():
    aci = AdaptiveConformal(np.array([[1.0], [2.0], [3.0]]), level=50, gamma=0.5)
    assert _bounds(aci, 0.0)[1] == 2.0  # ceil(4 * 0.5) = 2nd of {1, 2, 3}
    aci.update([5.0], [0.0])  # miss: alpha_t = 0.5 + 0.5 * (0.5 - 1) = 0.25
    assert aci.alpha_t[0] == 0.25
    assert _bounds(aci, 0.0)[1] == 5.0  # ceil(5 * 0.75) = 4th of {1, 2, 3, 5}
    aci.update([6.0], [0.0])  # miss: alpha_t = 0
    assert aci.alpha_t[0] == 0.0
    assert _bounds(aci, 0.0) == (-math.inf, math.inf)
    aci.update([100.0], [0.0])  # covered by the infinite interval: alpha_t = 0.25
    assert aci.alpha_t[0] == 0.25
    assert _bounds(aci, 0.0)[1] == 100.0  # ceil(7 * 0.75) = 6th of six scores

    aci = AdaptiveConformal(np.array([[1.0], [2.0], [3.0]]), level=10, gamma=0.5)
    assert _bounds(aci, 0.0)[1] == 1.0  # ceil(4 * 0.1) = 1st
    aci.update([0.5], [0.0])  # covered: alpha_t = 0.9 + 0.5 * 0.9 = 1.35
    assert aci.alpha_t[0] == pytest.approx(1.35)
    assert _bounds(aci, 7.0) == (7.0, 7.0)  # zero width at the point
    aci.update([7.5], [7.0])  # a miss pulls alpha_t back by gamma * (1 - alpha)
    assert aci.alpha_t[0] == pytest.approx(1.30)


def test_aci_with_gamma_zero_is_split_conformal_on_the_matured_residuals():
    rng = np.random.default_rng(6)
    y_cal, y = rng.normal(size=(30, 1)), rng.normal(size=(40, 1))
    lo, hi = AdaptiveConformal(np.abs(y_cal), level=80, gamma=0.0).rolling(y, np.zeros_like(y))
    for t in (0, 1, 17, 39):
        seen = np.concatenate([y_cal, y[:t]])
        expected = SplitConformal.fit(seen, np.zeros_like(seen)).interval([[0.0]], 80)
        assert (lo[t, 0], hi[t, 0]) == (expected[0][0, 0], expected[1][0, 0])


# --- maturity in rolling ---------------------------------------------------------------------


def test_rolling_uses_only_matured_actuals():
    rng = np.random.default_rng(7)
    scores, y, point = np.abs(rng.normal(size=(25, 3))), rng.normal(size=(60, 3)), np.zeros((60, 3))
    lo, hi = AdaptiveConformal(scores, 90, gamma=0.05).rolling(y, point)

    # Step h of origin s matures at origin s + h: altering what is unknown at origin t = 30
    # leaves every interval up to t unchanged.
    t, future = 30, y.copy()
    for h in range(1, 4):
        future[t - h + 1 :, h - 1] = 1e6
    lo_f, hi_f = AdaptiveConformal(scores, 90, gamma=0.05).rolling(future, point)
    np.testing.assert_array_equal(lo_f[: t + 1], lo[: t + 1])
    np.testing.assert_array_equal(hi_f[: t + 1], hi[: t + 1])
    assert not np.array_equal(hi_f[t + 1 :], hi[t + 1 :])

    # The same walk through the online API: at each origin, feed back each step's matured
    # actual (NaN elsewhere) with the interval issued for it, then issue the next interval.
    online = AdaptiveConformal(scores, 90, gamma=0.05)
    for t in range(61):
        for h in range(1, 4):
            s = t - h
            if s >= 0:
                actual = np.full(3, np.nan)
                actual[h - 1] = y[s, h - 1]
                online.update(actual, point[s], lo_row=lo[s], hi_row=hi[s])
        if t < 60:
            issued = online.interval(point[t])
            np.testing.assert_array_equal(issued[0], lo[t])
            np.testing.assert_array_equal(issued[1], hi[t])


# --- serialisation and validation -----------------------------------------------------------


def test_split_conformal_round_trips_through_json():
    rng = np.random.default_rng(8)
    y, point = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    lo, hi = point - 1.0, point + 1.0
    sc = SplitConformal.fit(y, point, lower=lo - 0.5, upper=hi, quantile_pairs={80: (lo, hi)})
    d = sc.to_dict()
    back = SplitConformal.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d
    assert d["scores"][0] == sorted(d["scores"][0])  # stored ascending per step
    for level in (80, 95):
        for a, b in zip(back.interval(point, level, lo, hi), sc.interval(point, level, lo, hi)):
            np.testing.assert_array_equal(a, b)


def test_aci_state_round_trips_through_json_and_continues_identically():
    rng = np.random.default_rng(9)
    y, point = rng.normal(size=(80, 2)), np.zeros((80, 2))
    aci = AdaptiveConformal(np.abs(rng.normal(size=(60, 2))), 90, gamma=0.05, window=50)
    aci.rolling(y[:40], point[:40])
    back = AdaptiveConformal.from_dict(json.loads(json.dumps(aci.to_dict())))
    assert back.to_dict() == aci.to_dict()
    assert [len(s) for s in back.to_dict()["scores"]] == [50, 50]  # the window held
    for a, b in zip(back.rolling(y[40:], point[40:]), aci.rolling(y[40:], point[40:])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.alpha_t, aci.alpha_t)


@pytest.mark.parametrize("level", [0, 100, -5, 150, float("nan"), "90", True, None])
def test_bad_levels_raise_config_error_naming_level(level):
    sc = SplitConformal.fit(np.ones((5, 1)), np.zeros((5, 1)))
    with pytest.raises(ConfigError, match="level"):
        sc.interval(np.zeros((1, 1)), level)
    with pytest.raises(ConfigError, match="level"):
        AdaptiveConformal(np.ones((5, 1)), level)


def test_bad_shapes_and_values_raise_data_error_naming_the_argument():
    y = np.ones((5, 2))
    with pytest.raises(DataError, match="y must have shape"):
        SplitConformal.fit(np.ones(5), np.ones(5))
    with pytest.raises(DataError, match="point must have shape"):
        SplitConformal.fit(y, np.ones((5, 3)))
    with pytest.raises(DataError, match="y has a non-finite value nan at row 2, step 1"):
        SplitConformal.fit(np.where(np.arange(10).reshape(5, 2) == 5, np.nan, y), y)
    with pytest.raises(DataError, match=r"quantile_pairs\[90\]\[1\]"):
        SplitConformal.fit(y, y, quantile_pairs={90: (y, np.ones((4, 2)))})
    sc = SplitConformal.fit(y, y)
    with pytest.raises(DataError, match="point must have 2 columns"):
        sc.interval(np.ones((3, 1)), 90)
    with pytest.raises(DataError, match="lo must have shape"):
        sc.interval(np.ones((3, 2)), 90, lo=np.ones((2, 2)), hi=np.ones((3, 2)))
    aci = AdaptiveConformal(y, 90)
    with pytest.raises(DataError, match="point_row"):
        aci.interval(np.ones(3))
    with pytest.raises(DataError, match="actual_row"):
        aci.update(np.ones((1, 2)), np.ones(2))
    with pytest.raises(DataError, match="non-negative"):
        AdaptiveConformal(-y, 90)
    with pytest.raises(DataError, match="not a split conformal state"):
        SplitConformal.from_dict({"scores": [[1.0]]})
    with pytest.raises(DataError, match="missing"):
        AdaptiveConformal.from_dict({"method": "adaptive_conformal", "level": 90})


def test_bad_settings_raise_config_error_naming_the_argument():
    y = np.ones((5, 2))
    with pytest.raises(ConfigError, match="lower and upper"):
        SplitConformal.fit(y, y, lower=y)
    with pytest.raises(ConfigError, match="quantile_pairs must map"):
        SplitConformal.fit(y, y, quantile_pairs=[(y, y)])
    with pytest.raises(ConfigError, match="quantile_pairs level"):
        SplitConformal.fit(y, y, quantile_pairs={0.0: (y, y)})
    with pytest.raises(ConfigError, match=r"quantile_pairs\[80\] must be a \(lo, hi\) pair"):
        SplitConformal.fit(y, y, quantile_pairs={80: y})
    with pytest.raises(ConfigError, match="level=90"):  # CQR asked for, never calibrated
        SplitConformal.fit(y, y).interval(y, 90, lo=y, hi=y)
    for gamma in (-0.1, 1.5, "0.1"):
        with pytest.raises(ConfigError, match="gamma"):
            AdaptiveConformal(y, 90, gamma=gamma)
    for window in (0, 2.5, True):
        with pytest.raises(ConfigError, match="window"):
            AdaptiveConformal(y, 90, window=window)


def test_finite_aci_caps_an_infinite_interval_at_the_largest_score():
    """Where the paper's interval is infinite (alpha_t <= 0), `finite=True` gives the widest
    interval the held scores allow; elsewhere both agree, and the setting survives to_dict."""
    scores = np.array([[1.0], [2.0], [3.0]])
    paper = AdaptiveConformal(scores, level=90, gamma=0.5)
    capped = AdaptiveConformal(scores, level=90, gamma=0.5, finite=True)
    for aci in (paper, capped):
        aci.update([100.0], [0.0])  # missed: alpha_t = 0.1 + 0.5 * (0.1 - 1) < 0
    assert paper.interval(np.array([0.0]))[1][0] == np.inf
    lo, hi = capped.interval(np.array([0.0]))
    assert (lo[0], hi[0]) == (-100.0, 100.0)  # the largest held score: the new residual
    again = AdaptiveConformal.from_dict(json.loads(json.dumps(capped.to_dict())))
    assert again.finite and again.interval(np.array([0.0]))[1][0] == 100.0
