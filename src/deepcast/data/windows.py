"""Chronological split, train-only scaling and zero-copy sliding windows.

Pure numerics: numpy in, numpy out. No files, no Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError, DataError


def split(
    df: pd.DataFrame, val: float = 0.15, test: float = 0.15
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split a frame chronologically into train, validation and test parts.

    Fractions are of the rows; the parts keep their order and never overlap.

    >>> train, val, test = split(df, val=0.15, test=0.15)
    """
    for name, frac in (("val", val), ("test", test)):
        if not 0 <= frac < 1:
            raise ConfigError(f"{name} must be a fraction in [0, 1). Received: {name}={frac}")
    if val + test >= 1:
        raise ConfigError(f"val + test must leave rows for training. Received: {val} + {test}")
    n = len(df)
    n_test = int(round(n * test))
    n_val = int(round(n * val))
    n_train = n - n_val - n_test
    if n_train <= 0:
        raise DataError(f"{n} rows are too few to split into train/val/test")
    return df.iloc[:n_train], df.iloc[n_train : n_train + n_val], df.iloc[n_train + n_val :]


@dataclass(frozen=True)
class Scaler:
    """Per-column standardisation, fitted on training rows only.

    Written by hand rather than taken from scikit-learn because it is two lines of numpy and
    must round-trip through JSON (no pickle) with the saved forecaster.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        values = np.asarray(values, dtype=np.float64)
        scale = values.std(axis=0)
        # A constant column (a flag that never fires in train) would divide by zero.
        scale = np.where(scale > 1e-12, scale, 1.0)
        return cls(mean=values.mean(axis=0), scale=scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def inverse(self, values: np.ndarray, column: int) -> np.ndarray:
        """Undo the scaling of one column (the target) on an array of any shape."""
        return np.asarray(values, dtype=np.float64) * self.scale[column] + self.mean[column]

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Scaler:
        return cls(mean=np.asarray(data["mean"], float), scale=np.asarray(data["scale"], float))


def n_windows(n_rows: int, lookback: int, horizon: int) -> int:
    return max(n_rows - lookback - horizon + 1, 0)


def sliding_windows(
    inputs: np.ndarray, target: np.ndarray, lookback: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input windows and direct multi-step targets, as read-only views (no copy).

    Window i reads rows i .. i+lookback-1 and forecasts target rows i+lookback .. +horizon-1.

    inputs (T, F), target (T,) -> X (N, lookback, F), Y (N, horizon), N = T - lookback - horizon + 1
    """
    n = n_windows(len(inputs), lookback, horizon)
    if n == 0:
        raise DataError(
            f"{len(inputs)} rows are too few for lookback {lookback} + horizon {horizon}"
        )
    # sliding_window_view puts the window axis last: (T-L+1, F, L) -> (T-L+1, L, F)
    x = np.lib.stride_tricks.sliding_window_view(inputs, lookback, axis=0).swapaxes(1, 2)
    y = np.lib.stride_tricks.sliding_window_view(target[lookback:], horizon)
    return x[:n], y[:n]


def context_windows(history: np.ndarray, future: np.ndarray, lookback: int) -> np.ndarray:
    """Prepend the last `lookback` rows of `history` to `future`, so that the first forecast
    of the future part can be made from rows the model has already seen."""
    return np.concatenate([history[-lookback:], future], axis=0)


def with_known_future(past: np.ndarray, known: np.ndarray, lookback: int, horizon: int):
    """Append to each window the rows of its forecast steps, holding only what is known ahead.

    past (N, lookback, F) windows of a series of T rows; known (T + horizon, F): for every row
    of the series and `horizon` rows beyond its end, the values known in advance (calendar
    features) and zero in every observed column, so no future observation can reach a model.
    Window i gets rows i + lookback .. i + lookback + horizon - 1 of `known`.

    -> (N, lookback + horizon, F), a copy.
    """
    future = np.lib.stride_tricks.sliding_window_view(known[lookback:], horizon, axis=0)
    future = future.swapaxes(1, 2)[: len(past)]  # [N, horizon, F]
    if len(future) < len(past):
        raise DataError(f"known-future rows end before the last window: {len(known)} rows")
    return np.concatenate([past, future.astype(past.dtype)], axis=1)
