"""Forecast error metrics over numpy arrays in original units.

Pure numerics: arrays in, floats out. Every metric takes `y_true` and `y_pred` of the same
shape — (n,) for one-step forecasts or (n, H) for H-step forecasts, one row per forecast
origin — and averages over all entries.

>>> import numpy as np
>>> y, f = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 6.0]])
>>> mae(y, f), rmse(y, f)
(0.5, 1.0)
"""

from __future__ import annotations

import math

import numpy as np

from deepcast.errors import ConfigError, DataError

METRIC_NAMES = ("rmse", "mae", "mape", "smape", "mase")


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64, with identical non-empty shapes."""
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    # Strict: numpy would broadcast (n,) against (n, 1) into (n, n) and give a silent wrong answer.
    if a.shape != b.shape:
        raise DataError(
            f"y_true and y_pred must have the same shape. Received: {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise DataError("y_true and y_pred are empty; there is nothing to score")
    return a, b


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error.

    >>> rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0]))  # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error.

    >>> mae(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    1.5
    """
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent (100 * scikit-learn's fraction).

    Entries whose actual value is exactly zero are skipped, since their percentage error is
    undefined; when every actual is zero the result is nan (never inf, and never the huge finite
    number scikit-learn's epsilon produces). Prefer sMAPE or MASE for series that cross zero.

    >>> round(mape(np.array([100.0, 0.0, 50.0]), np.array([110.0, 5.0, 40.0])), 9)  # (10+20)/2
    15.0
    """
    a, b = _pair(y_true, y_pred)
    nonzero = a != 0
    if not nonzero.any():
        return math.nan
    return float(100.0 * np.mean(np.abs((a[nonzero] - b[nonzero]) / a[nonzero])))


def smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Symmetric MAPE in percent, from 0 to 200: mean of 200 * |y - f| / (|y| + |f|).

    An entry where actual and forecast are both zero counts as 0 (a perfect forecast), not as
    0/0, so the result is always finite for finite inputs.

    >>> round(smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])), 6)  # (200 * 50 / 150 + 0) / 2
    33.333333
    """
    a, b = _pair(y_true, y_pred)
    denom = np.abs(a) + np.abs(b)
    safe = np.where(denom > 0, denom, 1.0)  # numerator is 0 wherever denom is 0
    return float(np.mean(200.0 * np.abs(a - b) / safe))


def mase_scale(train_target: np.ndarray, period: int = 1) -> float:
    """In-sample mean absolute error of the seasonal naive forecast on the training series.

    The Hyndman-Koehler scale: mean |y_t - y_{t-period}| over t = period .. T-1. With
    `period=1` it is the one-step naive forecast's error.

    >>> mase_scale(np.array([1.0, 3.0, 2.0, 6.0]), period=1)  # (2 + 1 + 4) / 3
    2.3333333333333335
    """
    y = np.asarray(train_target, dtype=np.float64)
    if y.ndim != 1:
        raise DataError(f"train_target must be one-dimensional. Received shape {y.shape}")
    if not isinstance(period, (int, np.integer)) or period < 1:
        raise ConfigError(f"period must be a positive integer. Received: period={period!r}")
    if len(y) <= period:
        raise DataError(
            f"the training series has {len(y)} rows; a MASE scale with period {period} "
            f"needs at least {period + 1}"
        )
    return float(np.mean(np.abs(y[period:] - y[:-period])))


def mase(y_true: np.ndarray, y_pred: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error: MAE divided by `scale` (see `mase_scale`).

    Below 1 the forecast beats the in-sample (seasonal) naive forecast. A scale of zero (a
    constant training series) or a non-finite one gives nan: the ratio has no meaning then.

    >>> mase(np.array([2.0, 4.0]), np.array([3.0, 6.0]), scale=3.0)  # MAE 1.5 / 3
    0.5
    """
    error = mae(y_true, y_pred)
    if not math.isfinite(scale) or scale <= 0:
        return math.nan
    return error / float(scale)


def _json_float(value: float) -> float | None:
    """Plain float for JSON; nan and inf become None (JSON has no literal for them)."""
    value = float(value)
    return value if math.isfinite(value) else None


def all_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, mase_scale: float | None
) -> dict[str, float | None]:
    """Every metric in one JSON-safe dict: {"rmse", "mae", "mape", "smape", "mase"}.

    Values are plain Python floats; an undefined value (nan, e.g. MAPE on all-zero actuals, or
    MASE when `mase_scale` is None or zero) is None. For H > 1, add the per-step errors with
    `per_step_metrics` (the forecaster stores them under a "per_step" key).

    >>> all_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]), mase_scale=2.0)["mase"]
    0.5
    """
    values = {
        "rmse": rmse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "smape": smape(y_true, y_pred),
        "mase": math.nan if mase_scale is None else mase(y_true, y_pred, mase_scale),
    }
    return {name: _json_float(v) for name, v in values.items()}


def per_step_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, list[float | None]]:
    """RMSE and MAE of each horizon step, as JSON-safe lists of length H.

    Errors usually grow with the step; this shows by how much. A 1-D input counts as H = 1.

    >>> per_step_metrics(np.zeros((2, 2)), np.array([[1.0, 2.0], [1.0, 4.0]]))["mae"]
    [1.0, 3.0]
    """
    a, b = _pair(y_true, y_pred)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.ndim != 2:
        raise DataError(f"per-step metrics need shape (n, H). Received shape {a.shape}")
    error = a - b  # (n, H)
    return {
        "rmse": [_json_float(v) for v in np.sqrt(np.mean(error**2, axis=0))],
        "mae": [_json_float(v) for v in np.mean(np.abs(error), axis=0)],
    }
