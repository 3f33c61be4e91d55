"""Scores of probabilistic forecasts over numpy arrays: quantiles, samples, Gaussians, intervals.

Pure numerics: arrays in, floats (or small arrays and dicts) out. The observed values `y` have
any shape S — (n,) or (n, H), one row per forecast origin — and every score averages over all
entries. A forecast adds a trailing axis when it has one: `q_pred` is S + (Q,) for Q quantile
levels, `samples` is S + (M,) for M draws. Parameters (`mu`, `sigma`, `df`) and interval bounds
(`lo`, `hi`) have the shape S of `y`; `mu`, `sigma` and `df` may also be plain scalars. Shapes
are checked strictly, never broadcast, because (n,) against (n, 1) would silently give (n, n).

Lower is better for every score except `coverage`, which should be near the nominal level.

>>> import numpy as np
>>> y = np.array([1.0, 3.0])
>>> pinball(y, np.array([[0.0, 2.0], [2.0, 4.0]]), quantiles=[0.25, 0.75])  # every miss is 1
0.25
>>> crps_samples(y, np.array([[1.0, 1.0], [2.0, 4.0]]))  # (0 + (1 - 0.5)) / 2
0.25
>>> interval_scores(y, {80: (np.array([0.0, 0.0]), np.array([2.0, 2.0]))})
{'coverage_80': 0.5, 'width_80': 2.0, 'winkler_80': 7.0}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import numpy as np

from deepcast.errors import ConfigError, DataError

# math.erf and math.lgamma elementwise, so the module needs numpy only (no scipy).
_erf = np.vectorize(math.erf, otypes=[np.float64])
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


# ------------------------------------------------------------------ validation


def _finite(name: str, values: np.ndarray, infinite_ok: bool = False) -> np.ndarray:
    """`values` as a non-empty, all-finite float64 array (with `infinite_ok`, +-inf allowed:
    an interval bound may be infinite); DataError naming `name` otherwise."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric. Received: {name}={values!r}") from exc
    if a.size == 0:
        raise DataError(f"{name} is empty; there is nothing to score")
    valid = ~np.isnan(a) if infinite_ok else np.isfinite(a)
    if not valid.all():
        bad = int(np.size(a) - np.count_nonzero(valid))
        kind = "nan" if infinite_ok else "non-finite (nan or inf)"
        raise DataError(f"{name} has {bad} {kind} value(s)")
    return a


def _same_shape(
    name: str, values: np.ndarray, shape: tuple[int, ...], ref: str, infinite_ok: bool = False
) -> np.ndarray:
    """`values` checked by `_finite`, with exactly the shape of the array named `ref`."""
    a = _finite(name, values, infinite_ok)
    if a.shape != shape:
        raise DataError(
            f"{name} must have the shape of {ref}, {shape}. Received: {name} of shape {a.shape}"
        )
    return a


def _scalar_or_same_shape(name: str, values, shape: tuple[int, ...]) -> np.ndarray:
    """A scalar parameter, or one with the shape of `y`."""
    a = _finite(name, values)
    if a.ndim != 0 and a.shape != shape:
        raise DataError(
            f"{name} must be a scalar or have the shape of y, {shape}. "
            f"Received: {name} of shape {a.shape}"
        )
    return a


def _positive(name: str, a: np.ndarray) -> None:
    if (a <= 0).any():
        raise ConfigError(f"{name} must be > 0. Received: {name} with minimum {a.min()!r}")


def _quantile_levels(quantiles) -> np.ndarray:
    """Quantile levels as a 1-D float64 array, each strictly between 0 and 1."""
    try:
        q = np.asarray(quantiles, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"quantiles must be numbers. Received: {quantiles!r}") from exc
    if q.ndim != 1 or q.size == 0:
        raise ConfigError(f"quantiles must be a non-empty 1-D sequence. Received: {quantiles!r}")
    if not ((q > 0) & (q < 1)).all():  # also rejects nan
        raise ConfigError(f"quantiles must lie strictly between 0 and 1. Received: {quantiles!r}")
    return q


def _trailing(name: str, values, y: np.ndarray, axis_name: str) -> np.ndarray:
    """A forecast of shape y.shape + (K,), K >= 1: quantiles or samples on the last axis."""
    a = _finite(name, values)
    if a.ndim != y.ndim + 1 or a.shape[:-1] != y.shape:
        raise DataError(
            f"{name} must have shape y.shape + ({axis_name},) = "
            f"({', '.join(str(d) for d in y.shape + (axis_name,))}). "
            f"Received: {name} of shape {a.shape} for y of shape {y.shape}"
        )
    return a


def _check_level(level: float) -> float:
    """A nominal interval level in percent, strictly between 0 and 100."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 100:
        raise ConfigError(f"level must be a percentage in (0, 100). Received: level={level!r}")
    return float(level)


def _bounds(lo, hi, shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """lo and hi with one shape (that of y when `shape` is given), and lo <= hi everywhere.
    Bounds may be infinite (an uncalibrated conformal band): it covers, and its width is inf."""
    if shape is None:
        lo = _finite("lo", lo, infinite_ok=True)
    else:
        lo = _same_shape("lo", lo, shape, "y", infinite_ok=True)
    hi = _same_shape("hi", hi, lo.shape, "lo" if shape is None else "y", infinite_ok=True)
    crossed = int(np.count_nonzero(lo > hi))
    if crossed:
        raise DataError(f"lo must not exceed hi. Received: lo > hi at {crossed} entries")
    return lo, hi


# ------------------------------------------------------------------ quantile forecasts


def level_quantiles(level: float) -> tuple[float, float]:
    """The quantile levels (alpha/2, 1 - alpha/2) bounding a central `level`% interval.

    >>> level_quantiles(80), level_quantiles(97.5)
    ((0.1, 0.9), (0.0125, 0.9875))
    """
    level = _check_level(level)
    # (100 -+ level) / 200 rather than 1 - level / 100 keeps 80 -> 0.1 exact.
    return (100.0 - level) / 200.0, (100.0 + level) / 200.0


def pinball_per_quantile(
    y: np.ndarray, q_pred: np.ndarray, quantiles: Sequence[float]
) -> np.ndarray:
    """Mean pinball (quantile) loss of each quantile level, shape (Q,).

    For level tau and error u = y - q the loss is tau * u if u >= 0, else (tau - 1) * u.

    >>> pinball_per_quantile(np.array([1.0, 1.0]), np.array([[0.0, 0.0], [2.0, 2.0]]), [0.25, 0.75])
    array([0.5, 0.5])
    """
    y = _finite("y", y)
    q_pred = _trailing("q_pred", q_pred, y, "Q")
    tau = _quantile_levels(quantiles)
    if q_pred.shape[-1] != tau.size:
        raise DataError(
            f"q_pred has {q_pred.shape[-1]} quantiles on its last axis but quantiles lists "
            f"{tau.size} levels"
        )
    error = y[..., None] - q_pred  # S + (Q,)
    loss = np.maximum(tau * error, (tau - 1.0) * error)
    return loss.reshape(-1, tau.size).mean(axis=0)


def pinball(y: np.ndarray, q_pred: np.ndarray, quantiles: Sequence[float]) -> float:
    """Mean pinball loss over every entry and every quantile level (see `pinball_per_quantile`).

    >>> pinball(np.array([2.0]), np.array([[1.0]]), [0.5])  # half the absolute error
    0.5
    """
    return float(np.mean(pinball_per_quantile(y, q_pred, quantiles)))


def crps_quantiles(y: np.ndarray, q_pred: np.ndarray, quantiles: Sequence[float]) -> float:
    """CRPS approximated from quantiles: 2 * mean pinball loss over the quantile levels.

    The CRPS equals twice the pinball loss integrated over all levels in (0, 1), so with levels
    spread evenly over (0, 1) (e.g. 0.01, ..., 0.99) this is a quadrature of that integral.
    It is exact only in the limit; with few or uneven levels (e.g. just 0.1 and 0.9) it is a
    weighted quantile loss on the CRPS scale, comparable across models with the same levels.

    >>> crps_quantiles(np.array([0.0]), np.array([[0.0]]), [0.5])  # median on target
    0.0
    """
    return 2.0 * pinball(y, q_pred, quantiles)


# ------------------------------------------------------------------ sample forecasts


def crps_samples(y: np.ndarray, samples: np.ndarray) -> float:
    """Mean exact CRPS of the empirical distribution of `samples`: E|X - y| - E|X - X'| / 2.

    The pairwise term comes from the sorted samples in O(M log M) rather than O(M^2): with
    gaps g_k = x_(k+1) - x_(k), each gap lies between the k smallest and the M - k largest
    samples, so sum_{i,j} |x_i - x_j| = 2 * sum_k k (M - k) g_k. Pairs include i = j (the
    "V-statistic" form, as in properscoring's `crps_ensemble`), so one sample gives the MAE.

    >>> crps_samples(np.array([0.0]), np.array([[-1.0, 1.0]]))  # 1 - (2 * 1 * 1 * 2 / 4) / 2
    0.5
    """
    y = _finite("y", y)
    x = np.sort(_trailing("samples", samples, y, "M"), axis=-1)  # S + (M,)
    m = x.shape[-1]
    abs_error = np.mean(np.abs(x - y[..., None]), axis=-1)  # S
    k = np.arange(1, m)
    pair_mean = 2.0 * np.sum(k * (m - k) * np.diff(x, axis=-1), axis=-1) / m**2  # E|X - X'|
    return float(np.mean(abs_error - 0.5 * pair_mean))


# ------------------------------------------------------------------ parametric forecasts


def _gaussian_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def _gaussian_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def _location_scale(y, mu, sigma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _finite("y", y)
    mu = _scalar_or_same_shape("mu", mu, y.shape)
    sigma = _scalar_or_same_shape("sigma", sigma, y.shape)
    _positive("sigma", sigma)
    return y, mu, sigma


def crps_gaussian(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
    """Mean CRPS of N(mu, sigma^2) forecasts, in closed form (Gneiting & Raftery 2007, eq. 21).

    With z = (y - mu) / sigma: sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)).

    >>> round(crps_gaussian(np.array([0.0]), 0.0, 1.0), 6)  # 2 phi(0) - 1/sqrt(pi)
    0.233695
    """
    y, mu, sigma = _location_scale(y, mu, sigma)
    z = (y - mu) / sigma
    crps = sigma * (
        z * (2.0 * _gaussian_cdf(z) - 1.0) + 2.0 * _gaussian_pdf(z) - 1.0 / math.sqrt(math.pi)
    )
    return float(np.mean(crps))  # z has the shape of y


def gaussian_nll(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
    """Mean negative log-likelihood of y under N(mu, sigma^2).

    >>> round(gaussian_nll(np.array([0.0]), 0.0, 1.0), 6)  # log(2 pi) / 2
    0.918939
    """
    y, mu, sigma = _location_scale(y, mu, sigma)
    z = (y - mu) / sigma
    nll = 0.5 * math.log(2.0 * math.pi) + np.log(sigma) + 0.5 * z**2
    return float(np.mean(nll))


def student_t_nll(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray, df: np.ndarray) -> float:
    """Mean negative log-likelihood of y under a location-scale Student t(df, mu, sigma).

    The density of mu + sigma * T with T ~ t(df); as df grows it tends to N(mu, sigma^2).

    >>> round(student_t_nll(np.array([0.0]), 0.0, 1.0, df=1.0), 6)  # Cauchy: log(pi)
    1.14473
    """
    y, mu, sigma = _location_scale(y, mu, sigma)
    df = _scalar_or_same_shape("df", df, y.shape)
    _positive("df", df)
    z = (y - mu) / sigma
    log_pdf = (
        _lgamma((df + 1.0) / 2.0)
        - _lgamma(df / 2.0)
        - 0.5 * np.log(df * math.pi)
        - np.log(sigma)
        - (df + 1.0) / 2.0 * np.log1p(z**2 / df)
    )
    return float(-np.mean(log_pdf))


# ------------------------------------------------------------------ prediction intervals


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Fraction (not percent) of y inside the closed interval [lo, hi].

    >>> coverage(np.array([0.0, 1.0, 3.0]), np.zeros(3), np.ones(3)) == 2 / 3
    True
    """
    y = _finite("y", y)
    lo, hi = _bounds(lo, hi, y.shape)
    return float(np.mean((lo <= y) & (y <= hi)))


def mean_width(lo: np.ndarray, hi: np.ndarray) -> float:
    """Mean interval width, hi - lo.

    >>> mean_width(np.array([0.0, 1.0]), np.array([2.0, 5.0]))
    3.0
    """
    lo, hi = _bounds(lo, hi)
    return float(np.mean(hi - lo))


def winkler(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> float:
    """Mean Winkler (interval) score of central `level`% intervals (Gneiting & Raftery 2007).

    The width, plus (2 / alpha) times the distance by which y falls outside [lo, hi], with
    alpha = 1 - level / 100. A narrow interval pays for every miss; a wide one for its width.

    >>> winkler(np.array([3.0]), np.array([0.0]), np.array([2.0]), level=80)  # 2 + 10 * 1
    12.0
    """
    alpha = (100.0 - _check_level(level)) / 100.0
    y = _finite("y", y)
    lo, hi = _bounds(lo, hi, y.shape)
    below = np.maximum(lo - y, 0.0)
    above = np.maximum(y - hi, 0.0)
    return float(np.mean((hi - lo) + (2.0 / alpha) * (below + above)))


def _level_name(level: float) -> str:
    """80 and 80.0 -> "80"; 97.5 -> "97.5"."""
    return str(int(level)) if float(level).is_integer() else repr(float(level))


def interval_scores(
    y: np.ndarray, intervals: Mapping[float, tuple[np.ndarray, np.ndarray]]
) -> dict[str, float]:
    """Coverage, mean width and Winkler score of each interval level, in one flat dict.

    `intervals` maps a level in percent to its (lo, hi) bounds, as `empirical_quantile_intervals`
    returns. Keys are "coverage_80", "width_80", "winkler_80", ... in the order of `intervals`.

    >>> interval_scores(np.array([1.0]), {97.5: (np.array([0.0]), np.array([2.0]))})
    {'coverage_97.5': 1.0, 'width_97.5': 2.0, 'winkler_97.5': 2.0}
    """
    if not intervals:
        raise ConfigError("intervals is empty; give at least one level: (lo, hi)")
    scores: dict[str, float] = {}
    for level, (lo, hi) in intervals.items():
        name = _level_name(_check_level(level))
        scores[f"coverage_{name}"] = coverage(y, lo, hi)
        scores[f"width_{name}"] = mean_width(lo, hi)
        scores[f"winkler_{name}"] = winkler(y, lo, hi, level)
    return scores


def empirical_quantile_intervals(
    point: np.ndarray, residuals: np.ndarray, levels: Iterable[float]
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Intervals from a point forecaster's own past errors: the honest baseline interval.

    `point` (n, H) holds forecasts; `residuals` (m, H) the errors (actual - forecast) of the
    same forecaster on earlier data. For each level and each step h, lo and hi are the point
    forecast plus the empirical alpha/2 and 1 - alpha/2 quantiles (np.quantile, default
    method) of step h's residuals, alpha = 1 - level / 100. Returns {level: (lo, hi)}, each
    bound of shape (n, H), ready for `interval_scores`.

    >>> bounds = empirical_quantile_intervals(np.zeros((1, 1)), np.array([[-1.0], [1.0]]), [50])
    >>> bounds[50]
    (array([[-0.5]]), array([[0.5]]))
    """
    point = _finite("point", point)
    residuals = _finite("residuals", residuals)
    if point.ndim != 2:
        raise DataError(f"point must have shape (n, H). Received: point of shape {point.shape}")
    if residuals.ndim != 2 or residuals.shape[1] != point.shape[1]:
        raise DataError(
            f"residuals must have shape (m, H) with H = {point.shape[1]} as in point. "
            f"Received: residuals of shape {residuals.shape}"
        )
    levels = list(levels)
    if not levels:
        raise ConfigError("levels is empty; give at least one level in percent, e.g. [80, 95]")
    bounds: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in levels:
        q = np.quantile(residuals, level_quantiles(level), axis=0)  # (2, H), per step
        bounds[level] = (point + q[0], point + q[1])  # (n, H) + (H,) -> (n, H)
    return bounds
