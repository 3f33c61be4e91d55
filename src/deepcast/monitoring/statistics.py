"""The numerics of drift detection, as plain functions over numpy arrays: robust location and
scale, quantile bins, the population stability index and the CUSUM recursion.

>>> import numpy as np
>>> edges = quantile_edges(np.arange(100.0), bins=4)           # [24.75, 49.5, 74.25]
>>> psi(np.array([25, 25, 25, 25]), np.array([0.25, 0.25, 0.25, 0.25]))
0.0
>>> cusum(np.array([0.0, 2.0, 2.0, -1.0]), slack=0.5)           # [0, 1.5, 3, 1.5]
"""

from __future__ import annotations

import numpy as np

# Half a count added to every bin (Jeffreys): an empty bin of a short window must not make
# the log ratio infinite, and one empty bin among ten must not alone read as drift.
SMOOTHING = 0.5


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 x MAD (the sd for normal data); the sd when the MAD is 0.

    A few anomalies among the reference errors should not widen what counts as normal.
    """
    values = np.asarray(values, dtype=np.float64)
    centre = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - centre)))
    if scale == 0.0:
        scale = float(np.std(values))
    return centre, scale


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the midpoints between distinct values when there are at most `bins`
    of them (a 0/1 column gets one bin per value), else the `bins`-quantiles."""
    values = np.asarray(values, dtype=np.float64)
    distinct = np.unique(values)
    if len(distinct) <= bins:
        return (distinct[:-1] + distinct[1:]) / 2
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value, 0..len(edges) (a value on an edge goes to the upper bin)."""
    return np.searchsorted(edges, values, side="right")


def proportions(counts: np.ndarray) -> np.ndarray:
    """Smoothed proportions of bin counts over the last axis."""
    counts = np.asarray(counts, dtype=np.float64) + SMOOTHING
    return counts / counts.sum(axis=-1, keepdims=True)


def psi(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Population stability index of bin `counts` (last axis: bins; any leading axes, e.g.
    one row per window) against the `expected` proportions:
    sum over bins of (p - q) ln(p / q), p the smoothed proportions of `counts`, q `expected`.
    0 for identical distributions; 0.1 is read as a slight and 0.25 as a large shift."""
    p, q = proportions(counts), np.asarray(expected, dtype=np.float64)
    return np.sum((p - q) * np.log(p / q), axis=-1)


def rolling_counts(bins: np.ndarray, n_bins: int, window: int) -> np.ndarray:
    """Bin counts of every `window` consecutive rows: [len(bins) - window + 1, n_bins]; the
    row r counts bins[r : r + window]. Negative bin numbers (missing values) are not counted."""
    onehot = np.zeros((len(bins) + 1, n_bins))
    rows = np.flatnonzero(bins >= 0)
    onehot[rows + 1, bins[rows]] = 1.0
    total = np.cumsum(onehot, axis=0)  # [T + 1, B]: counts of the first t rows
    return total[window:] - total[:-window]


def cusum(increments: np.ndarray, slack: float) -> np.ndarray:
    """Upper CUSUM path S_t = max(0, S_{t-1} + x_t - slack), S_{-1} = 0.

    Reads as: the evidence that the mean of x rose by more than `slack`, reset to 0 whenever
    the recent increments say it did not. A non-finite increment leaves S unchanged.
    """
    out = np.empty(len(increments))
    s = 0.0
    for t, x in enumerate(np.asarray(increments, dtype=np.float64).tolist()):
        if x == x and abs(x) != float("inf"):  # finite, without a numpy call per row
            s = max(0.0, s + x - slack)
        out[t] = s
    return out
