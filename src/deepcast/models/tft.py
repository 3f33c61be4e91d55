"""`tft`: the Temporal Fusion Transformer (Lim, Arık, Loeff and Pfister, "Temporal Fusion
Transformers for interpretable multi-horizon time series forecasting", IJF 2021).

Reads windows [B, lookback + horizon, F] (known_future.py): the lookback rows with every input,
then the forecast steps' rows with only their known-future (calendar) columns. Without static
covariates, the paper's blocks in order:

  past [B, L, F] ---- embed + variable selection --> [B, L, d] --> LSTM encoder --.
  known [B, H, K] --- embed + variable selection --> [B, H, d] --> LSTM decoder --+--> gate+norm
    --> enrichment GRN --> interpretable multi-head attention (decoder steps over every earlier
    position) --> gate+norm --> position-wise GRN --> gate+norm (skip from the LSTM block)
    --> dense: [B, H, outputs per step]

What makes it interpretable is recorded on an ordinary forward pass (`interpretation`): the
selection weight of each past and known-future input at every time step, and the attention of
each forecast step over the window, averaged over heads (the heads share their value
projection, so the average is the attention the output actually used).
"""

from __future__ import annotations

import threading

import keras
import numpy as np
from keras import ops

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.models.fused_lstm import FusedLSTM
from deepcast.models.known_future import FutureRows, PastRows
from deepcast.models.spec import ModelSpec, Option

# While `interpretation` runs, the selection and attention layers append their weights here
# (per thread, so forecasts served on other threads neither record nor disturb the record).
_recording = threading.local()


def _record(layer: keras.layers.Layer, values) -> None:
    record = getattr(_recording, "values", None)
    if record is not None:
        record.setdefault(layer.name, []).append(keras.ops.convert_to_numpy(values))


@keras.saving.register_keras_serializable(package="deepcast")
class VariableEmbedding(keras.layers.Layer):
    """[B, T, V] scalar inputs -> [B, T, V, units]: one linear embedding per variable."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        variables = input_shape[-1]
        self.kernel = self.add_weight(shape=(variables, self.units), name="kernel")
        self.bias = self.add_weight(shape=(variables, self.units), name="bias", initializer="zeros")

    def call(self, x):
        return ops.expand_dims(x, -1) * self.kernel + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="deepcast")
class GatedResidualNetwork(keras.layers.Layer):
    """GRN (paper eq. 2-5): LayerNorm(skip(x) + GLU(W2 ELU(W1 x))), last axis `units` wide.

    The gated linear unit lets the block switch itself off (output = skip) where the data
    gives it nothing to add; `skip` is a projection only when the widths differ."""

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.hidden = keras.layers.Dense(units, activation="elu", name="hidden")
        self.inner = keras.layers.Dense(units, name="inner")
        self.drop = keras.layers.Dropout(dropout)
        self.value = keras.layers.Dense(units, name="glu_value")
        self.gate = keras.layers.Dense(units, activation="sigmoid", name="glu_gate")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape):
        self.skip = None
        if input_shape[-1] != self.units:
            self.skip = keras.layers.Dense(self.units, name="skip")
            self.skip.build(input_shape)
        for layer in (self.hidden,):
            layer.build(input_shape)
        inner_shape = (*input_shape[:-1], self.units)
        for layer in (self.inner, self.value, self.gate, self.norm):
            layer.build(inner_shape)

    def call(self, x, training=None):
        h = self.drop(self.inner(self.hidden(x)), training=training)
        skip = x if self.skip is None else self.skip(x)
        return self.norm(skip + self.value(h) * self.gate(h))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="deepcast")
class _PerVariable(keras.layers.Layer):
    """Base of the blocks over V variables of `units` each, with `dropout`: one config."""

    def __init__(self, variables: int, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.n_variables, self.units, self.dropout = variables, units, dropout

    def get_config(self):
        return {
            **super().get_config(),
            "variables": self.n_variables,
            "units": self.units,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="deepcast")
class VariableGRNs(_PerVariable):
    """[B, T, V, d] -> [B, T, V, d]: one GRN per variable (same width in and out, so the skip
    is the identity), all V computed at once with a variable axis on every weight instead of V
    separate layers called in turn (one einsum per step rather than V small matmuls)."""

    def __init__(self, variables: int, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(variables, units, dropout, **kwargs)
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        v, d = self.n_variables, self.units

        def weight(name, shape, initializer="glorot_uniform"):
            return self.add_weight(shape=shape, name=name, initializer=initializer)

        self.hidden_kernel, self.hidden_bias = (
            weight("hidden_kernel", (v, d, d)),
            weight("hidden_bias", (v, d), "zeros"),
        )
        self.inner_kernel, self.inner_bias = (
            weight("inner_kernel", (v, d, d)),
            weight("inner_bias", (v, d), "zeros"),
        )
        self.value_kernel, self.value_bias = (
            weight("value_kernel", (v, d, d)),
            weight("value_bias", (v, d), "zeros"),
        )
        self.gate_kernel, self.gate_bias = (
            weight("gate_kernel", (v, d, d)),
            weight("gate_bias", (v, d), "zeros"),
        )
        self.gamma, self.beta = weight("gamma", (v, d), "ones"), weight("beta", (v, d), "zeros")

    def call(self, x, training=None):
        def dense(h, kernel, bias):
            return ops.einsum("btvd,vdu->btvu", h, kernel) + bias

        h = ops.elu(dense(x, self.hidden_kernel, self.hidden_bias))
        h = self.drop(dense(h, self.inner_kernel, self.inner_bias), training=training)
        gated = dense(h, self.value_kernel, self.value_bias) * ops.sigmoid(
            dense(h, self.gate_kernel, self.gate_bias)
        )
        # the fused kernel normalises; the scale and shift are per variable, so applied after
        normalised = ops.layer_normalization(x + gated, epsilon=1e-5)
        return normalised * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="deepcast")
class VariableSelection(_PerVariable):
    """[B, T, V, d] embedded variables -> ([B, T, d] selected, [B, T, V] weights).

    A GRN over all variables gives softmax weights per time step; each variable passes its own
    GRN; the output is their weighted sum (paper eq. 6-8)."""

    # Rows per forecasting call (_backend.predict_rows): its [rows, time, variables, width]
    # activations spill out of the CPU caches in bigger calls (benchmarks/predict_rows.py).
    predict_rows = 64

    def __init__(self, variables: int, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(variables, units, dropout, **kwargs)
        self.weighting = GatedResidualNetwork(variables, dropout, name="weighting")
        self.per_variable = VariableGRNs(variables, units, dropout, name="per_variable")

    def build(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        self.weighting.build((batch, steps, self.n_variables * input_shape[-1]))
        self.per_variable.build(input_shape)

    def call(self, embedded, training=None):
        shape = ops.shape(embedded)
        flat = ops.reshape(embedded, (shape[0], shape[1], self.n_variables * shape[3]))
        weights = ops.softmax(self.weighting(flat, training=training), axis=-1)  # [B, T, V]
        _record(self, weights)
        processed = self.per_variable(embedded, training=training)  # [B, T, V, d]
        return ops.sum(processed * ops.expand_dims(weights, -1), axis=2), weights

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        return (batch, steps, self.units), (batch, steps, self.n_variables)


@keras.saving.register_keras_serializable(package="deepcast")
class GateAddNorm(keras.layers.Layer):
    """(x, skip) -> LayerNorm(skip + GLU(dropout(x))): the paper's gated skip connection."""

    def __init__(self, units: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.drop = keras.layers.Dropout(dropout)
        self.value = keras.layers.Dense(units, name="glu_value")
        self.gate = keras.layers.Dense(units, activation="sigmoid", name="glu_gate")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, x_shape, skip_shape=None):
        for layer in (self.value, self.gate):
            layer.build(x_shape)
        self.norm.build((*x_shape[:-1], self.units))

    def call(self, x, skip, training=None):
        x = self.drop(x, training=training)
        return self.norm(skip + self.value(x) * self.gate(x))

    def compute_output_shape(self, x_shape, skip_shape=None):
        return (*x_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="deepcast")
class InterpretableAttention(keras.layers.Layer):
    """Interpretable multi-head attention (paper eq. 13-16) of the H decoder steps over every
    position of the window, causally: step j sees the lookback rows and steps 1..j.

    (queries [B, H, d], memory [B, L + H, d]) -> [B, H, d]. Heads have their own query and
    key projections but share one value projection, so the head-averaged attention
    [B, H, L + H] is exactly the weighting of the values the output is made of."""

    def __init__(self, units: int, heads: int, lookback: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.heads, self.lookback, self.dropout = units, heads, lookback, dropout
        self.key_units = units // heads
        self.value = keras.layers.Dense(self.key_units, name="value")
        self.output_projection = keras.layers.Dense(units, name="output")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, queries_shape, memory_shape=None):
        shape = (self.heads, self.units, self.key_units)
        self.query_kernel = self.add_weight(shape=shape, name="query_kernel")
        self.key_kernel = self.add_weight(shape=shape, name="key_kernel")
        self.value.build(memory_shape or queries_shape)
        self.output_projection.build((None, None, self.key_units))

    def call(self, queries, memory, training=None):
        q = ops.einsum("bqd,hdk->bhqk", queries, self.query_kernel)  # [B, heads, H, k]
        k = ops.einsum("bmd,hdk->bhmk", memory, self.key_kernel)  # [B, heads, L + H, k]
        scores = ops.einsum("bhqk,bhmk->bhqm", q, k) / float(np.sqrt(self.key_units))
        steps, positions = ops.shape(queries)[1], ops.shape(memory)[1]
        # step j (0-based) may read positions up to lookback + j
        visible = ops.expand_dims(ops.arange(positions), 0) <= (
            ops.expand_dims(ops.arange(steps), 1) + self.lookback
        )  # [H, L + H]
        scores = ops.where(visible, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)  # [B, heads, H, L + H]
        mean_weights = ops.mean(weights, axis=1)  # [B, H, L + H]
        _record(self, mean_weights)
        values = self.value(memory)  # [B, L + H, k], shared by the heads
        attended = ops.einsum("bqm,bmk->bqk", self.drop(mean_weights, training=training), values)
        return self.output_projection(attended)

    def compute_output_shape(self, queries_shape, memory_shape=None):
        return (*queries_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "heads": self.heads,
            "lookback": self.lookback,
            "dropout": self.dropout,
        }


def build_tft(
    lookback: int,
    n_features: int,
    outputs: int,
    *,
    horizon: int,
    future_columns: list[int],
    hidden: int = 32,
    heads: int = 4,
    dropout: float = 0.1,
) -> keras.Model:
    """Windows [B, lookback + horizon, n_features] -> [B, outputs] (outputs = horizon * the
    head's channels, step-major as heads.HeadLayer reads them).

    >>> build_tft(48, 5, 24, horizon=24, future_columns=[3, 4]).output_shape
    (None, 24)
    """
    if outputs % horizon:
        raise ConfigError(f"tft: {outputs} outputs are not a whole number per step of {horizon}")
    channels = outputs // horizon
    inputs = keras.Input(shape=(lookback + horizon, n_features), name="window")
    past = PastRows(lookback, name="past_rows")(inputs)  # [B, L, F]
    known = FutureRows(lookback, future_columns, name="known_rows")(inputs)  # [B, H, K]

    past_embedded = VariableEmbedding(hidden, name="past_embedding")(past)  # [B, L, F, d]
    known_embedded = VariableEmbedding(hidden, name="known_embedding")(known)  # [B, H, K, d]
    past_selected, _ = VariableSelection(n_features, hidden, dropout, name="past_selection")(
        past_embedded
    )  # [B, L, d]
    known_selected, _ = VariableSelection(
        len(future_columns), hidden, dropout, name="known_selection"
    )(known_embedded)  # [B, H, d]

    encoded, h, c = FusedLSTM(hidden, return_sequences=True, return_state=True, name="encoder")(
        past_selected
    )
    decoded = FusedLSTM(hidden, return_sequences=True, name="decoder")(
        known_selected, initial_state=[h, c]
    )
    sequence = keras.layers.Concatenate(axis=1, name="lstm_sequence")([encoded, decoded])
    selected = keras.layers.Concatenate(axis=1, name="selected_sequence")(
        [past_selected, known_selected]
    )
    temporal = GateAddNorm(hidden, dropout, name="lstm_gate")(sequence, selected)  # [B, L+H, d]
    enriched = GatedResidualNetwork(hidden, dropout, name="enrichment")(temporal)

    steps = FutureRows(lookback, list(range(hidden)), name="decoder_steps")
    queries = steps(enriched)  # [B, H, d]
    attended = InterpretableAttention(hidden, heads, lookback, dropout, name="attention")(
        queries, enriched
    )
    x = GateAddNorm(hidden, dropout, name="attention_gate")(attended, queries)
    x = GatedResidualNetwork(hidden, dropout, name="position_wise")(x)
    temporal_steps = FutureRows(lookback, list(range(hidden)), name="temporal_steps")(temporal)
    x = GateAddNorm(hidden, 0.0, name="output_gate")(x, temporal_steps)
    x = keras.layers.Dense(channels, name="per_step")(x)  # [B, H, channels]
    outputs_ = keras.layers.Flatten(name="forecast")(x)  # [B, H * channels], step-major
    return keras.Model(inputs, outputs_, name="deepcast_tft")


def interpretation(model: keras.Model, x: np.ndarray, batch_size: int | None = None) -> dict:
    """The weights a TFT used for the forecasts of windows `x`, recorded on a forward pass
    (through any wrapper: window_norm, baseline_start, an output head):
    `past` [N, L, F] and `known` [N, H, K] selection weights (each row sums to 1) and
    `attention` [N, H, L + H] (each row sums to 1; position L - 1 is lag 1)."""
    _recording.values = {}
    try:
        _backend.predict(model, x, batch_size)
        recorded = _recording.values
    finally:
        del _recording.values
    if not {"past_selection", "known_selection", "attention"} <= set(recorded):
        raise ConfigError(f"{model.name} is not a tft model: it recorded no selection weights")
    return {
        key: np.concatenate(recorded[name])
        for key, name in (
            ("past", "past_selection"),
            ("known", "known_selection"),
            ("attention", "attention"),
        )
    }


def attention_weights(
    model: keras.Model, x: np.ndarray, batch_size: int | None = None
) -> np.ndarray:
    """Attention of each forecast step over the window, [N, H, L + H] (heads averaged)."""
    return interpretation(model, x, batch_size)["attention"]


class TFT(ModelSpec):
    """Temporal Fusion Transformer: variable selection, LSTM encoder-decoder, interpretable
    attention; reads the calendar of the forecast steps as known-future inputs.

    >>> dc.Forecaster(target="y", lookback=168, horizon=24, model=dc.models.TFT(hidden=32))
    """

    name = "tft"
    summary = "Temporal Fusion Transformer: variable selection, LSTM enc-dec, attention"
    options = (
        Option("hidden", int, 32, "width of every block", low=1, search=[16, 32, 64]),
        Option("heads", int, 4, "attention heads (divide hidden)", low=1, search=[1, 2, 4]),
        Option(
            "dropout",
            float,
            0.1,
            "dropout in every gated block",
            low=0.0,
            high=1.0,
            high_open=True,
            search={"low": 0.0, "high": 0.3},
        ),
    )
    future_inputs = True
    attention = True
    dropout_sampling = True
    # As NeuralForecast's TFT: MAE won on both sub-daily sets over three seeds (README).
    default_loss = "mae"
    builder = staticmethod(build_tft)
    attention_weights = staticmethod(attention_weights)

    @classmethod
    def checked(cls, options: dict) -> dict:
        config = super().checked(options)
        if config["hidden"] % config["heads"]:
            raise ConfigError(
                f"tft: hidden must be a multiple of heads. Received: hidden={config['hidden']}, "
                f"heads={config['heads']}"
            )
        return config
