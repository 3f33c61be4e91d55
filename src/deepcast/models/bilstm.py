"""`bilstm`: stacked bidirectional LSTM, both directions on the fused CPU kernel.

[B, lookback, F] -> BiLSTM x layers -> [B, 2 * units] -> Dense -> [B, horizon]

Reading the window backwards too lets the last layer see the oldest lags as recently as the
newest ones, which helps when the strongest drivers are far back (a weekly lag in hourly data).
"""

from __future__ import annotations

import keras

from deepcast.models.lstm import DROPOUT, LAYERS, UNITS, build_lstm
from deepcast.models.spec import ModelSpec


def build_bilstm(
    lookback: int,
    n_features: int,
    horizon: int,
    units: int = 64,
    layers: int = 2,
    dropout: float = 0.1,
) -> keras.Model:
    """>>> build_bilstm(48, 3, 24, units=16).output_shape
    (None, 24)
    """
    return build_lstm(lookback, n_features, horizon, units, layers, dropout, bidirectional=True)


class BiLSTM(ModelSpec):
    """Stacked bidirectional LSTM.

    >>> dc.Forecaster(target="y", model=dc.models.BiLSTM(units=32))
    """

    name = "bilstm"
    summary = "stacked bidirectional LSTM (fused CPU kernel both ways), dense head"
    options = (UNITS, LAYERS, DROPOUT)
    dropout_sampling = True
    builder = staticmethod(build_bilstm)
