"""`dlinear`: moving-average decomposition, then one linear map per part (Zeng et al., "Are
Transformers Effective for Time Series Forecasting?", AAAI 2023).

[B, L, F] -> target [B, L] -> trend = moving average, edges replicated [B, L]
                              remainder = target - trend [B, L]
          -> trend @ W_trend + remainder @ W_remainder (+ biases) [B, H]
          (+ covariates, linear_parts.py) -> [B, H]

The whole model is linear in the window; the split only changes how training reaches it: the
smooth trend and the fast remainder each get their own weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deepcast.models.linear_parts import COVARIATES, LinearForecast, linear_model
from deepcast.models.spec import ModelSpec, Option

MOVING_AVG = Option(
    "moving_avg", int, 25, "moving-average window of the trend, rows", low=1, search=[13, 25, 49]
)


def averaging_matrix(lookback: int, kernel_size: int) -> np.ndarray:
    """(L, L) matrix A such that `series @ A` is the centred mean over `kernel_size` rows, the
    first and last values repeated beyond the ends (the paper's `moving_avg`). An even
    `kernel_size` reaches one row further back than forward, as pandas' `rolling(k,
    center=True)` does. A matrix product, not padding and pooling: ~7x faster on CPU.

    >>> np.array([[0.0, 3.0, 6.0]]) @ averaging_matrix(3, 3)
    array([[1., 3., 5.]])
    """
    before = kernel_size // 2
    offsets = np.arange(kernel_size) - before  # [k]
    columns = np.broadcast_to(np.arange(lookback), (kernel_size, lookback))  # [k, L]
    rows = np.clip(columns + offsets[:, None], 0, lookback - 1)  # the row each term reads
    matrix = np.zeros((lookback, lookback))
    np.add.at(matrix, (rows, columns), 1.0 / kernel_size)
    return matrix


@keras.saving.register_keras_serializable(package="deepcast")
class DLinearLayer(LinearForecast):
    """[B, L, F] window -> [B, H]: linear maps of the target's trend and remainder, summed.

    >>> tuple(DLinearLayer(horizon=4, moving_avg=5)(ops.ones((2, 24, 3))).shape)
    (2, 4)
    """

    def __init__(self, horizon: int, moving_avg: int = 25, covariates: bool = True, **kwargs):
        super().__init__(horizon, covariates, **kwargs)
        self.moving_avg = int(moving_avg)

    def build_target(self, lookback: int) -> None:
        shape = (lookback, self.horizon)
        # Zero start, not the paper's random one: as good or better after a few epochs, and
        # the first forecast is the training mean rather than noise.
        self.trend_kernel = self.add_weight(shape=shape, initializer="zeros", name="trend_kernel")
        self.trend_bias = self.add_weight(
            shape=(self.horizon,), initializer="zeros", name="trend_bias"
        )
        self.remainder_kernel = self.add_weight(
            shape=shape, initializer="zeros", name="remainder_kernel"
        )
        self.remainder_bias = self.add_weight(
            shape=(self.horizon,), initializer="zeros", name="remainder_bias"
        )
        # A constant, not a weight: rebuilt from the config, never saved or trained.
        average = averaging_matrix(lookback, self.moving_avg)
        self.average = ops.convert_to_tensor(average.astype(self.compute_dtype))

    def decompose(self, target):
        """[B, L] target -> ([B, L] trend, [B, L] remainder)."""
        trend = ops.matmul(target, self.average)
        return trend, target - trend

    def target_forecast(self, target):
        trend, remainder = self.decompose(target)  # [B, L] each
        from_trend = ops.matmul(trend, self.trend_kernel) + self.trend_bias  # [B, H]
        return from_trend + ops.matmul(remainder, self.remainder_kernel) + self.remainder_bias

    def get_config(self) -> dict:
        return {**super().get_config(), "moving_avg": self.moving_avg}


def build_dlinear(
    lookback: int,
    n_features: int,
    horizon: int,
    moving_avg: int = 25,
    covariates: bool = True,
) -> keras.Model:
    """>>> build_dlinear(96, 3, 24).output_shape
    (None, 24)
    """
    layer = DLinearLayer(horizon, moving_avg, covariates, name="dlinear")
    return linear_model(layer, lookback, n_features, name="deepcast_dlinear")


class DLinear(ModelSpec):
    """Trend + remainder decomposition with a linear map on each; fast, strong on long horizons.

    >>> dc.Forecaster(target="y", lookback=336, horizon=96, model=dc.models.DLinear(moving_avg=49))
    """

    name = "dlinear"
    summary = "moving-average trend + remainder, one linear map each (Zeng et al. 2023)"
    options = (MOVING_AVG, COVARIATES)
    builder = staticmethod(build_dlinear)
