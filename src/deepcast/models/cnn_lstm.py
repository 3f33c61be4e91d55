"""`cnn_lstm`: causal convolutions extract local patterns, a fused LSTM reads them in order.

[B, lookback, F] -> causal Conv1D(filters, relu) x conv_layers -> [B, lookback, filters]
  -> LSTM x layers -> [B, units] -> Dense -> [B, horizon]

The convolutions are causal (each output step sees only its own and older rows), so the
sequence the LSTM reads stays in time order and no step mixes in rows newer than itself.
Layer i is dilated by dilation**i: with dilation 2 the receptive field doubles per layer, as in
WaveNet and TCNs; with 1 it grows by kernel_size - 1 per layer.
"""

from __future__ import annotations

import keras

from deepcast.models.lstm import DROPOUT, LAYERS, UNITS, recurrent_stack
from deepcast.models.spec import ModelSpec, Option

FILTERS = Option(
    "filters",
    int,
    32,
    "filters per convolution",
    low=1,
    search={"low": 8, "high": 128, "log": True},
)
KERNEL_SIZE = Option("kernel_size", int, 3, "rows per convolution", low=1, search=[2, 3, 5])
DILATION = Option(
    "dilation", int, 1, "dilation growth: layer i is dilated by dilation**i", low=1, search=[1, 2]
)
CONV_LAYERS = Option(
    "conv_layers", int, 2, "stacked causal convolutions", low=1, search={"low": 1, "high": 3}
)


def causal_conv_stack(x, filters: int, kernel_size: int, dilation: int, conv_layers: int):
    """[B, T, F] -> [B, T, filters]; output step t depends on input steps <= t only."""
    for i in range(conv_layers):
        x = keras.layers.Conv1D(
            filters,
            kernel_size,
            padding="causal",
            dilation_rate=dilation**i,
            activation="relu",
            name=f"conv_{i + 1}",
        )(x)
    return x


def receptive_field(kernel_size: int, dilation: int, conv_layers: int) -> int:
    """Rows of the window one output step of the conv stack sees (itself included).

    >>> receptive_field(3, 2, 3)   # 1 + 2 * (1 + 2 + 4)
    15
    """
    return 1 + (kernel_size - 1) * sum(dilation**i for i in range(conv_layers))


def build_cnn_lstm(
    lookback: int,
    n_features: int,
    horizon: int,
    filters: int = 32,
    kernel_size: int = 3,
    dilation: int = 1,
    conv_layers: int = 2,
    units: int = 64,
    layers: int = 2,
    dropout: float = 0.1,
) -> keras.Model:
    """>>> build_cnn_lstm(48, 3, 24, filters=16).output_shape
    (None, 24)
    """
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    x = causal_conv_stack(inputs, filters, kernel_size, dilation, conv_layers)  # [B, L, filters]
    x = recurrent_stack(x, units, layers, dropout)  # [B, units]
    outputs = keras.layers.Dense(horizon, name="forecast")(x)
    return keras.Model(inputs, outputs, name="deepcast_cnn_lstm")


class CNNLSTM(ModelSpec):
    """Causal convolutions in front of a stacked LSTM.

    >>> dc.Forecaster(target="y", model=dc.models.CNNLSTM(filters=32, dilation=2))
    """

    name = "cnn_lstm"
    summary = "causal Conv1D stack feeding a stacked LSTM (fused CPU kernel), dense head"
    options = (FILTERS, KERNEL_SIZE, DILATION, CONV_LAYERS, UNITS, LAYERS, DROPOUT)
    dropout_sampling = True
    builder = staticmethod(build_cnn_lstm)
