"""Baseline start: any family learns the residual of its best linear baseline.

[B, L, F] -> Flatten -> Dense "baseline" (frozen) -> [B, H]
          -> the family's network -> Gate (alpha) -> [B, H]
forecast = baseline + alpha * network

The naive, seasonal-naive and ridge forecasts are all linear maps of the window, so the one
with the lowest validation loss is copied into a frozen linear path, and the network learns
what it misses (LSTNet's "highway", Lai et al. 2018, with the baseline as its start). If after
training the network has not beaten that baseline on validation data, the gate is closed
(alpha = 0): the model then is that baseline exactly, and a run never quietly loses to it.

>>> forms = linear_baselines(lookback=4, n_features=1, horizon=2, periods=[2], ridge=None)
>>> forms["naive"][0]            # coef [H, L * F]: both steps copy the newest row
array([[0., 0., 0., 1.],
       [0., 0., 0., 1.]])
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deepcast.models.known_future import PastRows

PATH = "baseline"
GATE = "gate"


@keras.saving.register_keras_serializable(package="deepcast")
class Gate(keras.layers.Layer):
    """x -> alpha * x with one learned scalar alpha, 1 at the start. On [B, H, C] head
    parameters (heads.py) only the location, channel 0, is gated: spreads stay the network's."""

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(), initializer="ones", name="alpha")

    def call(self, x):
        if len(x.shape) == 2:
            return self.alpha * x
        return ops.concatenate([self.alpha * x[..., :1], x[..., 1:]], axis=-1)


@keras.saving.register_keras_serializable(package="deepcast")
class AddToLocation(keras.layers.Layer):
    """([B, H] baseline, [B, H] or [B, H, C] network) -> the sum; on head parameters the
    baseline is added to the location (channel 0) only."""

    def call(self, baseline, network):
        if len(network.shape) == 2:
            return baseline + network
        location = network[..., :1] + baseline[..., None]
        return ops.concatenate([location, network[..., 1:]], axis=-1)

    def compute_output_spec(self, baseline, network):
        return keras.KerasTensor(network.shape, dtype=self.compute_dtype)


def with_baseline_path(
    core: keras.Model, lookback: int, n_features: int, horizon: int, rows: int | None = None
) -> keras.Model:
    """`core` behind a gate, plus a frozen linear path from the flattened window. `rows`: the
    window's length when it carries known-future rows after the lookback (known_future.py);
    the linear path reads the lookback rows only."""
    inputs = keras.Input(shape=(rows or lookback, n_features), name="window")
    past = inputs if rows is None else PastRows(lookback, name="past_rows")(inputs)
    flat = keras.layers.Flatten(name="flat_window")(past)  # [B, L * F], lag-major
    linear = keras.layers.Dense(horizon, name=PATH, trainable=False)(flat)  # [B, H]
    network = Gate(name=GATE)(core(inputs))  # [B, H] or [B, H, C]
    outputs = AddToLocation(name="forecast")(linear, network)
    return keras.Model(inputs, outputs, name=f"{core.name}_baseline_start")


def linear_baselines(
    lookback: int, n_features: int, horizon: int, periods: list[int], ridge
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The baselines as (coef [H, L * F], intercept [H]) over a flattened scaled window whose
    column 0 is the target: naive, a seasonal naive per period that fits in the lookback (step
    h copies lag period * ceil(h / period) - h + 1), and `ridge` (a fitted LinearBaseline)."""
    newest = (lookback - 1) * n_features  # the flat index of the newest target value

    def copying(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coef = np.zeros((horizon, lookback * n_features))
        coef[np.arange(horizon), newest + offsets * n_features] = 1.0
        return coef, np.zeros(horizon)

    steps = np.arange(1, horizon + 1)
    forms = {"naive": copying(np.zeros(horizon, dtype=int))}
    for i, period in enumerate(periods):
        if period <= lookback:
            name = "seasonal_naive" if i == 0 else f"seasonal_naive_{period}"
            forms[name] = copying(steps - period * -(-steps // period))  # offsets in (-p, 0]
    if ridge is not None:
        forms["linear"] = (ridge.coef_, ridge.intercept_)
    return forms


def set_baseline(model: keras.Model, coef: np.ndarray, intercept: np.ndarray) -> None:
    model.get_layer(PATH).set_weights(
        [np.asarray(coef, "float32").T, np.asarray(intercept, "float32")]
    )


def close_gate(model: keras.Model) -> None:
    """Leave only the baseline path: the model forecasts exactly its baseline."""
    model.get_layer(GATE).alpha.assign(0.0)
