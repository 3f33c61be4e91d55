"""Per-window normalisation of the target channel, undone on the forecast (RevIN, without
the learned affine part: Kim et al., "Reversible Instance Normalization", ICLR 2022).

A network trained on 2012-2013 demand sees 2014 at another level and spread; standardising
each window's target by the window's own mean and standard deviation lets it learn the shape
of the next hours rather than the level, and the forecast is mapped back with the same two
numbers. Covariates (temperature, flags) keep the global scaling: their level carries meaning.
Counts are divided by nu = 1 + the window's mean instead, never shifted (`mode="mean"`, the
scaling of DeepAR, Salinas et al. 2020): a count distribution has no location to shift.
Two small layers, not `keras.ops` calls in the graph, so the model saves and loads by name.
"""

from __future__ import annotations

import keras
from keras import ops

EPSILON = 1e-5  # in globally scaled units: a flat window is centred, not divided by zero


@keras.saving.register_keras_serializable(package="deepcast")
class WindowNormalization(keras.layers.Layer):
    """[B, L, F] window -> (window with column 0 standardised per window, [B, 2] mean and std).

    >>> window, stats = WindowNormalization()(ops.ones((2, 5, 3)))
    >>> tuple(stats.shape)
    (2, 2)

    `lookback`: the statistics come from the first `lookback` rows only; rows after them are
    a model's known-future rows (models/known_future.py), whose target column holds no value.
    `mode="mean"`: column 0 is divided by nu = 1 + its mean and the statistics are (0, nu).
    """

    def __init__(self, lookback: int | None = None, mode: str = "standard", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("standard", "mean"):
            raise ValueError(f"mode must be 'standard' or 'mean'. Received: mode={mode!r}")
        self.lookback, self.mode = lookback, mode

    def call(self, window):
        target = window[:, :, :1]
        past = target if self.lookback is None else target[:, : self.lookback]
        mean = ops.mean(past, axis=1, keepdims=True)  # [B, 1, 1]
        if self.mode == "mean":  # counts: target / nu, nu = 1 + mean; no shift
            mean, std = ops.zeros_like(mean), 1.0 + mean
        else:
            std = ops.sqrt(ops.var(past, axis=1, keepdims=True) + EPSILON)
        normalised = ops.concatenate([(target - mean) / std, window[:, :, 1:]], axis=-1)
        return normalised, ops.concatenate([mean[:, 0], std[:, 0]], axis=-1)

    def compute_output_spec(self, window):
        batch, lookback, features = window.shape
        return (
            keras.KerasTensor((batch, lookback, features), dtype=self.compute_dtype),
            keras.KerasTensor((batch, 2), dtype=self.compute_dtype),
        )

    def get_config(self):
        config = {**super().get_config(), "lookback": self.lookback}
        if self.mode != "standard":  # files saved before the mode existed load as before
            config["mode"] = self.mode
        return config


@keras.saving.register_keras_serializable(package="deepcast")
class WindowDenormalization(keras.layers.Layer):
    """([B, H] forecast in window units, [B, 2] mean and std) -> [B, H] in scaled units.

    With an output head (`kinds`, heads.py), the forecast is [B, H, C]: locations are shifted
    and multiplied, spreads and rates only multiplied, shapes left alone, and a count's
    dispersion divided by the square root of the scale (alpha = alpha' / sqrt(nu)).
    """

    def __init__(self, kinds=None, **kwargs):
        super().__init__(**kwargs)
        self.kinds = None if kinds is None else tuple(kinds)

    def call(self, forecast, stats):
        mean, std = stats[:, 0:1], stats[:, 1:2]  # [B, 1]
        if self.kinds is None:
            return forecast * std + mean
        # Each channel is multiplied by std ** power: 1 for a location, spread or rate.
        powers = {"shape": 0.0, "dispersion": -0.5}
        power = ops.convert_to_tensor([powers.get(k, 1.0) for k in self.kinds], forecast.dtype)
        shifted = ops.convert_to_tensor(
            [float(k == "location") for k in self.kinds], forecast.dtype
        )
        mean, std = mean[:, :, None], std[:, :, None]  # [B, 1, 1]
        return forecast * ops.power(std, power) + mean * shifted

    def compute_output_spec(self, forecast, stats):
        return keras.KerasTensor(forecast.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        if self.kinds is not None:
            config["kinds"] = list(self.kinds)
        return config
