"""Summaries of an attribution array [n windows, L lags, F features]: pure numpy.

Importance is the mean absolute attribution: signs cancel between windows (a lag that
pushes some forecasts up and others down still matters), magnitudes do not.

>>> by_lag(np.ones((2, 48, 3))).shape  # one importance per window row, oldest first
(48,)
"""

from __future__ import annotations

import numpy as np


def by_cell(values: np.ndarray) -> np.ndarray:
    """Mean |attribution| over windows: [n, L, F] -> [L, F]."""
    return np.abs(values).mean(axis=0)


def by_lag(values: np.ndarray) -> np.ndarray:
    """Mean |attribution| over windows and features: [n, L, F] -> [L]."""
    return np.abs(values).mean(axis=(0, 2))


def by_feature(values: np.ndarray) -> np.ndarray:
    """Mean |attribution| over windows and lags: [n, L, F] -> [F]."""
    return np.abs(values).mean(axis=(0, 1))


def top_cells(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices, feature indices and importances of the k most important cells.

    Ties keep the window order (oldest row first, then feature order), so results are stable.

    >>> rows, cols, imp = top_cells(values, 3)  # imp sorted descending
    """
    cells = by_cell(values)  # [L, F]
    order = np.argsort(-cells, axis=None, kind="stable")[:k]  # flat indices into [L, F]
    rows, cols = np.unravel_index(order, cells.shape)
    return rows, cols, cells[rows, cols]
