"""What the linear families (`dlinear`, `nlinear`) share: one layer that maps a window to the
forecast, with the covariates' term written once.

Zeng et al. map each channel's lookback to the horizon on its own; our windows forecast one
target (column 0) from its history and its covariates (columns 1..F-1), so the covariates add
a linear map of their flattened window. That map starts at zero: with or without covariates,
training starts from the same model, and the covariates earn their weight from the data.

Each family is a single layer after the input rather than a graph of small layers: the torch
training loop then calls it directly (training.py), a few times faster for models this small.
"""

from __future__ import annotations

import keras
from keras import ops

from deepcast.models.spec import Option

COVARIATES = Option(
    "covariates",
    bool,
    True,
    "linear map of the covariate window (zero at start)",
    search=[True, False],
)


class LinearForecast(keras.layers.Layer):
    """Base of the linear families' layer: [B, L, F] window -> [B, H] forecast of column 0.

    A subclass creates its weights in `build_target(lookback)` and maps the target history
    [B, L] to [B, H] in `target_forecast`; this base adds the covariate term when the window
    has covariates and `covariates` is on.
    """

    def __init__(self, horizon: int, covariates: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.horizon, self.covariates = int(horizon), bool(covariates)

    def build(self, input_shape):
        _, lookback, n_features = input_shape
        # Target weights first: a seed gives them the same start with or without covariates.
        self.build_target(lookback)
        self.covariate_kernel = None
        if self.covariates and n_features > 1:
            self.covariate_kernel = self.add_weight(
                shape=(lookback * (n_features - 1), self.horizon),
                initializer="zeros",
                name="covariate_kernel",
            )

    def build_target(self, lookback: int) -> None:
        raise NotImplementedError

    def target_forecast(self, target):
        raise NotImplementedError

    def call(self, window, training=None):
        forecast = self.target_forecast(window[:, :, 0])  # [B, L] -> [B, H]
        if self.covariate_kernel is None:
            return forecast
        lookback, n_covariates = window.shape[1], window.shape[2] - 1
        flat = ops.reshape(window[:, :, 1:], (-1, lookback * n_covariates))  # [B, L * (F - 1)]
        return forecast + ops.matmul(flat, self.covariate_kernel)  # [B, H]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon)

    def get_config(self) -> dict:
        return {**super().get_config(), "horizon": self.horizon, "covariates": self.covariates}


def linear_model(layer: LinearForecast, lookback: int, n_features: int, name: str) -> keras.Model:
    """Input [B, lookback, n_features] -> `layer` -> [B, horizon]: a plain chain."""
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    return keras.Model(inputs, layer(inputs), name=name)
