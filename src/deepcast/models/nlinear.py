"""`nlinear`: the window's last target value subtracted, one linear map, the value added back
(Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).

[B, L, F] -> target [B, L] -> target - last [B, L] -> @ W + b [B, H] -> + last [B, H]
          (+ covariates, linear_parts.py) -> [B, H]

Adding a constant to the target history adds it to every forecast, so a level shift between
training and forecasting costs nothing; with every weight at zero the forecast is the naive
one (the last value, repeated), which is where training starts.
"""

from __future__ import annotations

import keras
from keras import ops

from deepcast.models.linear_parts import COVARIATES, LinearForecast, linear_model
from deepcast.models.spec import ModelSpec


@keras.saving.register_keras_serializable(package="deepcast")
class NLinearLayer(LinearForecast):
    """[B, L, F] window -> [B, H]: a linear map of the target relative to its last value.

    >>> ops.convert_to_numpy(NLinearLayer(horizon=2)(ops.ones((1, 24, 3))))  # starts naive
    array([[1., 1.]], dtype=float32)
    """

    def build_target(self, lookback: int) -> None:
        # Zero start (the paper's is random): training starts from the naive forecast.
        self.kernel = self.add_weight(
            shape=(lookback, self.horizon), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.horizon,), initializer="zeros", name="bias")

    def target_forecast(self, target):
        last = target[:, -1:]  # [B, 1]
        change = ops.matmul(target - last, self.kernel) + self.bias  # [B, L] -> [B, H]
        return change + last  # [B, H]


def build_nlinear(
    lookback: int,
    n_features: int,
    horizon: int,
    covariates: bool = True,
) -> keras.Model:
    """>>> build_nlinear(96, 3, 24).output_shape
    (None, 24)
    """
    layer = NLinearLayer(horizon, covariates, name="nlinear")
    return linear_model(layer, lookback, n_features, name="deepcast_nlinear")


class NLinear(ModelSpec):
    """One linear map of the window relative to its last value; starts as the naive forecast.

    >>> dc.Forecaster(target="OT", lookback=336, horizon=96, model="nlinear")
    """

    name = "nlinear"
    summary = "linear map of the window relative to its last value (Zeng et al. 2023)"
    options = (COVARIATES,)
    builder = staticmethod(build_nlinear)
