"""Honest baselines a deep model must beat: naive, seasonal naive and a ridge regression,
and the one rule that picks the baseline to compare against (`best_baseline`).

Forecast origins follow one convention throughout: origin `o` is the index of the last
observed row of the full target series, and an H-step forecast covers rows o+1 .. o+H. For the
sliding windows of `deepcast.data.windows`, window i ends on row i + lookback - 1, so
`origins = np.arange(n_windows) + lookback - 1` (indices into the series the windows came from).

>>> y = np.array([1.0, 2.0, 3.0, 4.0])
>>> naive(y, np.array([1, 2]), horizon=2)
array([[2., 2.],
       [3., 3.]])
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from deepcast.data.regularity import infer_frequency
from deepcast.errors import ConfigError, DataError, ModelFileError, NotFittedError

_DAY = pd.Timedelta(days=1)
_WEEK = pd.Timedelta(days=7)


# --- seasonal periods -------------------------------------------------------------------------


def seasonal_periods(index: pd.DatetimeIndex) -> list[int]:
    """Candidate seasonal periods in rows, from the timestamps' spacing; the first is primary.

    Sub-daily data gets [rows per day, rows per week] (hourly -> [24, 168], half-hourly ->
    [48, 336], 15-min -> [96, 672], 10-min -> [144, 1008], minutely -> [1440, 10080]); daily ->
    [7, 365]; business-daily -> [5]; weekly -> [52]; monthly -> [12]; quarterly -> [4];
    yearly -> [1] (no seasonality within the sampling). Anything else raises DataError.

    >>> seasonal_periods(pd.date_range("2024-01-01", periods=48, freq="h"))
    [24, 168]
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"a seasonal period needs a DatetimeIndex. Received: {type(index).__name__}"
        )
    if len(index) < 2:
        raise DataError(f"a seasonal period needs at least 2 timestamps. Received {len(index)}")
    spacing = pd.Series(index).diff().median()
    if pd.isna(spacing) or spacing <= pd.Timedelta(0):
        raise DataError("timestamps must be strictly increasing to infer a seasonal period")
    if spacing < _DAY and _DAY % spacing == pd.Timedelta(0):
        return [_DAY // spacing, _WEEK // spacing]
    if infer_frequency(index) == "B":  # trading days: a week is 5 rows, not 7
        return [5]
    days = spacing / _DAY
    # Calendar spacings vary (months are 28-31 days), so they are matched by range.
    for low, high, periods in (
        (1, 1, [7, 365]),
        (7, 7, [52]),
        (28, 31, [12]),
        (89, 92, [4]),
        (365, 366, [1]),
    ):
        if low <= days <= high:
            return periods
    raise DataError(
        f"cannot infer a seasonal period from a spacing of {spacing} between timestamps; "
        "pass the period explicitly"
    )


def infer_seasonal_period(index: pd.DatetimeIndex) -> int:
    """The primary seasonal period in rows (hourly -> 24, daily -> 7, monthly -> 12, ...).

    >>> infer_seasonal_period(pd.date_range("2024-01-01", periods=10, freq="30min"))
    48
    """
    return seasonal_periods(index)[0]


# --- naive forecasts --------------------------------------------------------------------------


def _check_origins(
    target: np.ndarray, origins: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray(target, dtype=np.float64)
    origins = np.asarray(origins)
    if target.ndim != 1:
        raise DataError(f"target must be one-dimensional. Received shape {target.shape}")
    if origins.ndim != 1 or not np.issubdtype(origins.dtype, np.integer):
        raise DataError(f"origins must be a 1-D integer array. Received {origins.dtype}")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"horizon must be a positive integer. Received: horizon={horizon!r}")
    if len(origins) and (origins.min() < 0 or origins.max() >= len(target)):
        raise DataError(
            f"forecast origins must be rows of the target (0 .. {len(target) - 1}). "
            f"Received origins from {origins.min()} to {origins.max()}"
        )
    return target, origins


def naive(target: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed value: the forecast for rows o+1 .. o+H is target[o].

    target (T,), origins (n,) -> (n, horizon)

    >>> naive(np.array([5.0, 7.0, 9.0]), np.array([1]), horizon=3)
    array([[7., 7., 7.]])
    """
    target, origins = _check_origins(target, origins, horizon)
    return np.repeat(target[origins][:, None], horizon, axis=1)


def seasonal_naive(
    target: np.ndarray, origins: np.ndarray, horizon: int, period: int
) -> np.ndarray:
    """Repeat the last observed season: row o+h gets target[o + h - period * k], with the
    smallest k >= 1 that lands on an observed row (<= o), i.e. k = ceil(h / period).

    target (T,), origins (n,) -> (n, horizon). Needs `period` observed rows up to each origin.

    >>> seasonal_naive(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3]), horizon=3, period=2)
    array([[3., 4., 3.]])
    """
    target, origins = _check_origins(target, origins, horizon)
    if not isinstance(period, (int, np.integer)) or period < 1:
        raise ConfigError(f"period must be a positive integer. Received: period={period!r}")
    if len(origins) and origins.min() < period - 1:
        raise DataError(
            f"seasonal naive with period {period} needs {period} observed rows before each "
            f"forecast; origin {origins.min()} has only {origins.min() + 1}"
        )
    steps = np.arange(1, horizon + 1)
    # Offset from the origin of the value each step copies; always in (-period, 0].
    offsets = steps - period * -(-steps // period)
    return target[origins[:, None] + offsets[None, :]]


# --- linear baseline --------------------------------------------------------------------------


class LinearBaseline:
    """Ridge regression from the flattened window to all H steps at once (direct strategy).

    X_windows (n, lookback, F) -> flattened (n, lookback * F) -> Y (n, H). It sees the same
    scaled inputs as the deep model, so it answers "is the network worth its cost?". Saved as
    JSON (plain lists), never pickled.

    >>> X, Y = np.random.rand(50, 4, 2), np.random.rand(50, 3)
    >>> LinearBaseline(alpha=1.0).fit(X, Y).predict(X).shape
    (50, 3)
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X_windows: np.ndarray, Y: np.ndarray) -> LinearBaseline:
        X = np.asarray(X_windows, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        if X.ndim != 3:
            raise DataError(f"X_windows must be (n, lookback, features). Received {X.shape}")
        Y = Y.reshape(len(Y), -1)  # (n,) -> (n, 1), so coef_ is always (H, lookback * F)
        if len(X) != len(Y):
            raise DataError(f"X_windows has {len(X)} windows but Y has {len(Y)} rows")
        model = Ridge(alpha=self.alpha).fit(X.reshape(len(X), -1), Y)
        self.window_shape_ = tuple(X.shape[1:])
        self.coef_ = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))  # (H, lookback * F)
        self.intercept_ = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))  # (H,)
        return self

    def predict(self, X_windows: np.ndarray) -> np.ndarray:
        """Forecasts (n, H) in the units of the Y it was fitted on."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("LinearBaseline.predict was called before fit")
        X = np.asarray(X_windows, dtype=np.float64)
        if X.shape[1:] != self.window_shape_:
            raise DataError(
                f"X_windows must have windows of shape {self.window_shape_}. Received {X.shape}"
            )
        # Same arithmetic as sklearn's Ridge.predict, so a JSON copy predicts identically.
        return X.reshape(len(X), -1) @ self.coef_.T + self.intercept_

    def to_json(self) -> dict:
        """Plain-list state: {"alpha", "window_shape", "coef", "intercept"}."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("LinearBaseline.to_json was called before fit")
        return {
            "alpha": float(self.alpha),
            "window_shape": list(self.window_shape_),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict) -> LinearBaseline:
        try:
            model = cls(alpha=float(data["alpha"]))
            model.window_shape_ = tuple(int(d) for d in data["window_shape"])
            model.coef_ = np.asarray(data["coef"], dtype=np.float64)
            model.intercept_ = np.asarray(data["intercept"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"corrupt linear baseline state: {exc!r}") from exc
        expected = (len(model.intercept_), int(np.prod(model.window_shape_)))
        if model.coef_.shape != expected:
            raise ModelFileError(
                f"corrupt linear baseline state: coef has shape {model.coef_.shape}, "
                f"expected {expected}"
            )
        return model


# --- choosing the baseline to beat ------------------------------------------------------------

#: The metric a best or strongest baseline is chosen by, everywhere: MAE, the backtest's
#: headline number, which a few spikes do not dominate the way they dominate RMSE.
SELECTION_METRIC = "mae"


def best_baseline(
    scores: Mapping[str, Mapping],
    metric: str = SELECTION_METRIC,
    prefix: str = "seasonal_naive",
) -> str:
    """Name of the baseline with the lowest `metric` among those whose name starts with
    `prefix`: by default the hardest seasonal naive (e.g. the weekly one for electricity).

    `scores` maps a system to its metrics: `Forecaster.evaluate(...)["baselines"]`
    ({name: {"mae": 1.2, ...}}) or a backtest's `aggregate` ({name: {"mae": {"mean": 1.2,
    "std": ...}}}, ranked by the mean). "model" is never a baseline; systems whose `metric`
    is missing or undefined are passed over; a tie goes to the system listed first.

    >>> best_baseline({"naive": {"mae": 1.0}, "seasonal_naive": {"mae": 2.0},
    ...                "seasonal_naive_168": {"mae": 1.5}})
    'seasonal_naive_168'
    """
    ranked = {}
    for name, metrics in scores.items():
        if name == "model" or not name.startswith(prefix):
            continue
        value = metrics.get(metric)
        if isinstance(value, Mapping):  # a backtest aggregate: {"mean": ..., "std": ...}
            value = value.get("mean")
        if value is not None and math.isfinite(value):
            ranked[name] = value
    if not ranked:
        kind = f"baseline named {prefix}*" if prefix else "baseline"
        raise DataError(f"no {kind} has a {metric} score to compare. Received: {list(scores)}")
    return min(ranked, key=ranked.__getitem__)


def strongest_baseline(scores: Mapping[str, Mapping], metric: str = SELECTION_METRIC) -> str:
    """Name of the baseline with the lowest `metric` among all of them (naive, every seasonal
    naive, linear): the one a forecast figure draws. Same rule as `best_baseline`.

    >>> strongest_baseline({"model": {"mae": 0.5}, "naive": {"mae": 1.0},
    ...                     "seasonal_naive": {"mae": 2.0}, "linear": {"mae": 0.9}})
    'linear'
    """
    return best_baseline(scores, metric, prefix="")


def baseline_label(name: str, seasonal_period: int) -> str:
    """A baseline's name for people: "seasonal_naive_168" -> "seasonal naive, period 168";
    plain "seasonal_naive" is the primary `seasonal_period`.

    >>> baseline_label("seasonal_naive", 24), baseline_label("linear", 24)
    ('seasonal naive, period 24', 'linear (ridge)')
    """
    if name == "seasonal_naive":
        return f"seasonal naive, period {seasonal_period}"
    if name.startswith("seasonal_naive_"):
        return f"seasonal naive, period {name.rpartition('_')[2]}"
    return {"linear": "linear (ridge)"}.get(name, name.replace("_", " "))
