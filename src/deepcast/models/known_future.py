"""Known-future inputs: the rows of the forecast steps appended to a window.

A family that declares `future_inputs` (TFT, DeepAR) reads windows [B, lookback + horizon, F]:
the lookback rows as every other family sees them, then one row per forecast step holding the
values known in advance (the calendar features of that step) and zero in every observed column
(`data.windows.with_known_future` builds them; no future observation is ever in them). Wrappers
and baselines that read the past only take the first `lookback` rows with `PastRows`.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="deepcast")
class PastRows(keras.layers.Layer):
    """[B, lookback + horizon, F] -> [B, lookback, F]: the observed part of a window."""

    def __init__(self, lookback: int, **kwargs):
        super().__init__(**kwargs)
        self.lookback = lookback

    def call(self, window):
        return window[:, : self.lookback]

    def compute_output_spec(self, window):
        return keras.KerasTensor((window.shape[0], self.lookback, window.shape[2]), window.dtype)

    def get_config(self):
        return {**super().get_config(), "lookback": self.lookback}


@keras.saving.register_keras_serializable(package="deepcast")
class FutureRows(keras.layers.Layer):
    """[B, lookback + horizon, F] -> [B, horizon, K]: the known columns of the forecast steps."""

    def __init__(self, lookback: int, columns: list[int], **kwargs):
        super().__init__(**kwargs)
        self.lookback, self.columns = lookback, [int(c) for c in columns]

    def call(self, window):
        future = window[:, self.lookback :]
        return keras.ops.take(future, self.columns, axis=2)

    def compute_output_spec(self, window):
        rows = window.shape[1] - self.lookback if window.shape[1] is not None else None
        return keras.KerasTensor((window.shape[0], rows, len(self.columns)), window.dtype)

    def get_config(self):
        return {**super().get_config(), "lookback": self.lookback, "columns": self.columns}
