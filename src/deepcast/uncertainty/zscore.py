"""Rolling z-score anomaly detection: the model-free baseline every detector has to beat.

Each value is compared with the `window` values before it (not including itself, so the
detector is causal and a spike cannot hide by inflating its own window):

    score_t = (x_t - mean(x_{t-window}, ..., x_{t-1})) / std(x_{t-window}, ..., x_{t-1})

with the sample std (ddof=1), and x_t is flagged when |score_t| > z, the two-sided standard
normal quantile for `level` (2.576 at level 99). The first `window` rows have no full window:
they score NaN and are never flagged.

`precision_recall` scores a flag mask against a truth mask, with a tolerance for detectors
that fire a few rows late.

>>> from deepcast.data.synthetic import synthetic
>>> df, truth = synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
>>> scores, flags = rolling_zscore(df["y"].to_numpy(), window=48, level=99)
>>> precision_recall(flags, truth.anomaly_rows(df.index), tolerance=2)["recall"]
"""

from __future__ import annotations

from numbers import Real
from statistics import NormalDist

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError, DataError


def rolling_zscore(
    values: np.ndarray, window: int = 48, level: float = 99
) -> tuple[np.ndarray, np.ndarray]:
    """Trailing z-score of every value and whether it is beyond the `level`% normal range.

    Returns `(scores, is_anomaly)`, both of shape (n,): scores float64 (NaN for the first
    `window` rows, and wherever the window holds a NaN), is_anomaly bool. A constant window
    has std 0: the next value scores +-inf (flagged) if it differs, NaN (not flagged) if not.

    >>> scores, flags = rolling_zscore(np.r_[np.zeros(48), 5.0], window=48)
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ConfigError(f"window must be an integer >= 2. Received: window={window!r}")
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 100:
        raise ConfigError(f"level must be a percentage in (0, 100). Received: level={level!r}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise DataError(f"values must be one-dimensional. Received shape {x.shape}")

    # rolling(...) at row t covers rows t-window+1..t; shifting by one makes it end at t-1.
    rolling = pd.Series(x).rolling(window, min_periods=window)
    mean = rolling.mean().shift(1).to_numpy()
    std = rolling.std(ddof=1).shift(1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (x - mean) / std
    threshold = NormalDist().inv_cdf(0.5 + level / 200)
    # NaN compares False, so the warm-up rows are never flagged.
    return scores, np.abs(scores) > threshold


def precision_recall(flags: np.ndarray, truth: np.ndarray, tolerance: int = 0) -> dict:
    """Precision, recall and F1 of a flag mask against a truth mask, with a lag tolerance.

    Matching, for masks over the same rows:
    - a true row i is found (a true positive) when some flag lies in rows i..i+tolerance,
      i.e. at it or at most `tolerance` rows after it; otherwise it is a false negative;
    - a flag at row j is a false positive when no true row lies in j-tolerance..j;
    - precision = tp / (tp + fp), recall = tp / (tp + fn), f1 their harmonic mean; each is 0.0
      when its denominator is 0 (as scikit-learn's `zero_division=0`).

    Every true row counts once however many flags it catches, so a detector that keeps firing
    for a few rows after a jump is not punished within the tolerance. With tolerance=0 this is
    exactly row-wise binary precision/recall. Keep the tolerance below the spacing of true rows:
    one flag can find two true rows whose windows overlap.

    >>> precision_recall(np.array([0, 1, 0, 0, 1]), np.array([1, 0, 0, 0, 0]), tolerance=1)
    {'precision': 0.5, 'recall': 1.0, 'f1': 0.666..., 'tp': 1, 'fp': 1, 'fn': 0}
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ConfigError(f"tolerance must be an integer >= 0. Received: tolerance={tolerance!r}")
    flags, truth = np.asarray(flags, dtype=bool), np.asarray(truth, dtype=bool)
    if flags.ndim != 1 or flags.shape != truth.shape:
        raise DataError(
            f"flags and truth must be 1-D masks of one length. Received shapes "
            f"{flags.shape} and {truth.shape}"
        )
    # near_flag[i]: a flag in i..i+tolerance; near_truth[j]: a true row in j-tolerance..j.
    near_flag, near_truth = flags.copy(), truth.copy()
    for k in range(1, min(tolerance, len(flags)) + 1):
        near_flag[:-k] |= flags[k:]
        near_truth[k:] |= truth[:-k]
    tp = int((truth & near_flag).sum())
    fn = int((truth & ~near_flag).sum())
    fp = int((flags & ~near_truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
