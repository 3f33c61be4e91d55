"""`transformer`: a PatchTST-style encoder (Nie et al., "A Time Series is Worth 64 Words", ICLR
2023) over patches of the window, flatten head to all horizon steps.

    [B, L, F] -> per-window normalisation of every channel (RevIN without affine)
      channel_independent: -> patches per channel [B*F, P, patch_len]
      otherwise:           -> patches of all channels [B, P, patch_len*F]
      -> Dense(d_model) + learned position [.., P, d_model] -> encoder block x layers
      -> flatten head -> [B, horizon] -> undo the target's normalisation

Patches and lags: the window is padded at its end by repeating its newest row `stride` times
(PatchTST's "end" padding), then cut into P = (lookback - patch_len) // stride + 2 patches of
`patch_len` rows, `stride` rows apart. Patch p (0 = oldest) holds window rows p*stride ..
p*stride + patch_len - 1 (rows past the newest are the newest repeated), i.e. lags
lookback - p*stride down to max(1, lookback - p*stride - patch_len + 1), lag 1 being the newest
row. `patch_lags(lookback, patch_len, stride)` gives that table, [P, patch_len], so attention
between patches (`attention_weights`) maps to lags.

Channel-independent mode (the default, as in PatchTST) runs every channel's patches through the
same encoder; the head then reads the target's tokens and every covariate's tokens flattened
(a linear map from [F, P, d_model] to the horizon), so a covariate's effect at a given lag (the
synthetic data's x1 three hours back) stays where it is in time rather than pooled away.
"""

from __future__ import annotations

import threading

import keras
import numpy as np
from keras import ops

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.models.registry import core_model
from deepcast.models.spec import ModelSpec, Option
from deepcast.models.window_norm import EPSILON, WindowDenormalization

# While `attention_weights` runs, each EncoderBlock appends its scores here (per thread, so
# concurrent forecasts on other threads neither record nor disturb the record).
_recording = threading.local()

PATCH_LEN = Option("patch_len", int, 16, "rows per patch", low=1, search=[8, 16, 24])
STRIDE = Option("stride", int, 8, "rows between patch starts (<= patch_len)", low=1, search=[4, 8])
D_MODEL = Option("d_model", int, 64, "width of a patch token", low=1, search=[32, 64, 128])
HEADS = Option("heads", int, 4, "attention heads (divide d_model)", low=1, search=[2, 4, 8])
LAYERS = Option("layers", int, 2, "encoder blocks", low=1, search={"low": 1, "high": 3})
FF_DIM = Option("ff_dim", int, 0, "feed-forward width; 0: 2 x d_model", low=0)
DROPOUT = Option(
    "dropout",
    float,
    0.1,
    "dropout of the patch embedding and each block's outputs",
    low=0,
    high=1,
    high_open=True,
    search={"low": 0.0, "high": 0.3},
)
CHANNEL_INDEPENDENT = Option(
    "channel_independent",
    bool,
    True,
    "each channel's patches encoded alone (PatchTST); false: all channels per patch",
    search=[True, False],
)


def patch_starts(lookback: int, patch_len: int, stride: int) -> np.ndarray:
    """First window row of every patch: [P], P = (lookback - patch_len) // stride + 2."""
    padded = lookback + stride
    return np.arange(0, padded - patch_len + 1, stride)


def patch_rows(lookback: int, patch_len: int, stride: int) -> np.ndarray:
    """Window row of every patch element, [P, patch_len]; padding repeats the newest row."""
    rows = patch_starts(lookback, patch_len, stride)[:, None] + np.arange(patch_len)
    return np.minimum(rows, lookback - 1)


def patch_lags(lookback: int, patch_len: int, stride: int) -> np.ndarray:
    """Lag of every patch element, [P, patch_len] (lag 1 = newest row; padding is lag 1).

    >>> patch_lags(48, 16, 8)[-1]   # the newest patch: lags 8..1, then the padding
    array([8, 7, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    """
    return lookback - patch_rows(lookback, patch_len, stride)


@keras.saving.register_keras_serializable(package="deepcast")
class ChannelNormalization(keras.layers.Layer):
    """[B, L, F] -> (every channel standardised per window, [B, 2] the target's mean and std).

    RevIN without the learned affine part; `WindowDenormalization` maps the forecast back.
    """

    def call(self, window):
        mean = ops.mean(window, axis=1, keepdims=True)  # [B, 1, F]
        std = ops.sqrt(ops.var(window, axis=1, keepdims=True) + EPSILON)
        stats = ops.concatenate([mean[:, 0, :1], std[:, 0, :1]], axis=-1)  # [B, 2]
        return (window - mean) / std, stats

    def compute_output_spec(self, window):
        return (
            keras.KerasTensor(window.shape, dtype=self.compute_dtype),
            keras.KerasTensor((window.shape[0], 2), dtype=self.compute_dtype),
        )


@keras.saving.register_keras_serializable(package="deepcast")
class Patching(keras.layers.Layer):
    """[B, L, F] -> [B*F, P, patch_len] (channel_independent) or [B, P, patch_len*F].

    One gather with the `patch_rows` table, no loop over patches. Channel-independent rows are
    ordered window-major (row b*F + f is channel f of window b); in the mixed layout the
    element (j, f) of a patch sits at j*F + f.
    """

    def __init__(self, patch_len: int, stride: int, channel_independent: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.patch_len, self.stride = patch_len, stride
        self.channel_independent = channel_independent

    def build(self, input_shape):
        lookback = input_shape[1]
        self.n_patches = len(patch_starts(lookback, self.patch_len, self.stride))
        rows = patch_rows(lookback, self.patch_len, self.stride).reshape(-1)
        self._rows = ops.convert_to_tensor(rows.astype("int32"))  # [P * patch_len]

    def call(self, window):
        _, lookback, features = window.shape
        if self.channel_independent:
            x = ops.reshape(ops.transpose(window, (0, 2, 1)), (-1, lookback))  # [B*F, L]
            x = ops.take(x, self._rows, axis=1)  # [B*F, P * patch_len]
            return ops.reshape(x, (-1, self.n_patches, self.patch_len))
        x = ops.take(window, self._rows, axis=1)  # [B, P * patch_len, F]
        return ops.reshape(x, (-1, self.n_patches, self.patch_len * features))

    def compute_output_shape(self, input_shape):
        batch, lookback, features = input_shape
        n_patches = len(patch_starts(lookback, self.patch_len, self.stride))
        if self.channel_independent:
            rows = None if batch is None else batch * features
            return (rows, n_patches, self.patch_len)
        return (batch, n_patches, self.patch_len * features)

    def get_config(self):
        return {
            **super().get_config(),
            "patch_len": self.patch_len,
            "stride": self.stride,
            "channel_independent": self.channel_independent,
        }


@keras.saving.register_keras_serializable(package="deepcast")
class PositionalEmbedding(keras.layers.Layer):
    """[N, P, d] -> [N, P, d] plus a learned vector per patch position."""

    def build(self, input_shape):
        init = keras.initializers.RandomUniform(-0.02, 0.02)  # as PatchTST
        self.position = self.add_weight(
            shape=tuple(input_shape[1:]), initializer=init, name="position"
        )

    def call(self, tokens):
        return tokens + self.position


@keras.saving.register_keras_serializable(package="deepcast")
class EncoderBlock(keras.layers.Layer):
    """Pre-norm Transformer encoder block: [N, P, d] -> [N, P, d].

    x + Dropout(MHA(LN(x))), then x + Dropout(FF(LN(x))), FF = Dense(ff_dim, gelu) -> Dense(d).
    Attention itself has no dropout, so Keras takes the backend's fused attention kernel;
    `call(..., return_attention_scores=True)` also returns the weights [N, heads, P, P], and
    inside `attention_weights` every block records them on the calling thread.

    >>> EncoderBlock(64, 4, 128)(ops.zeros((8, 6, 64))).shape
    (8, 6, 64)
    """

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.heads, self.ff_dim, self.dropout = d_model, heads, ff_dim, dropout
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.attention = keras.layers.MultiHeadAttention(heads, d_model // heads, name="attention")
        self.ff_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="ff_norm")
        self.ff_in = keras.layers.Dense(ff_dim, activation="gelu", name="ff_in")
        self.ff_out = keras.layers.Dense(d_model, name="ff_out")
        self.attention_dropout = keras.layers.Dropout(dropout)
        self.ff_dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.ff_norm.build(input_shape)
        self.ff_in.build(input_shape)
        self.ff_out.build((*input_shape[:-1], self.ff_dim))

    def call(self, x, training=None, return_attention_scores=False):
        recording = getattr(_recording, "scores", None)
        with_scores = return_attention_scores or recording is not None
        h = self.attention_norm(x)
        attended = self.attention(h, h, training=training, return_attention_scores=with_scores)
        if with_scores:
            attended, scores = attended  # scores [N, heads, P, P]
            if recording is not None:
                recording.setdefault(id(self), []).append(ops.convert_to_numpy(scores))
        x = x + self.attention_dropout(attended, training=training)
        h = self.ff_out(self.ff_in(self.ff_norm(x)))
        x = x + self.ff_dropout(h, training=training)
        return (x, scores) if return_attention_scores else x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "heads": self.heads,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="deepcast")
class ChannelFlatten(keras.layers.Layer):
    """[B*F, P, d] tokens of every channel -> [B, F * P * d], one row per window."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, tokens):
        _, n_patches, width = tokens.shape
        return ops.reshape(tokens, (-1, self.channels * n_patches * width))

    def compute_output_shape(self, input_shape):
        rows, n_patches, width = input_shape
        batch = None if rows is None else rows // self.channels
        return (batch, self.channels * n_patches * width)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def build_transformer(
    lookback: int,
    n_features: int,
    horizon: int,
    patch_len: int = 16,
    stride: int = 8,
    d_model: int = 64,
    heads: int = 4,
    layers: int = 2,
    ff_dim: int = 0,
    dropout: float = 0.1,
    channel_independent: bool = True,
) -> keras.Model:
    """>>> build_transformer(48, 3, 24).output_shape
    (None, 24)
    """
    if patch_len > lookback:
        raise ConfigError(
            f"transformer: patch_len must be <= lookback; patch_len={patch_len} is longer "
            f"than the window (lookback={lookback})"
        )
    inputs = keras.Input(shape=(lookback, n_features), name="window")
    x, stats = ChannelNormalization(name="revin")(inputs)  # [B, L, F], [B, 2]
    x = Patching(patch_len, stride, channel_independent, name="patching")(x)
    # independent: [B*F, P, patch_len]; mixed: [B, P, patch_len * F]
    x = keras.layers.Dense(d_model, name="patch_embedding")(x)  # [N, P, d_model]
    x = PositionalEmbedding(name="position")(x)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(layers):
        x = EncoderBlock(d_model, heads, ff_dim or 2 * d_model, dropout, name=f"encoder_{i + 1}")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")(x)
    if channel_independent:
        x = ChannelFlatten(n_features, name="flatten")(x)  # [B, F * P * d_model]
    else:
        x = keras.layers.Flatten(name="flatten")(x)  # [B, P * d_model]
    x = keras.layers.Dense(horizon, name="forecast")(x)  # [B, H], normalised units
    outputs = WindowDenormalization(name="revin_denorm")(x, stats)  # [B, H], scaled units
    return keras.Model(inputs, outputs, name="deepcast_transformer")


def attention_weights(
    model: keras.Model, x: np.ndarray, batch_size: int | None = None
) -> np.ndarray:
    """Attention between patches, [B, layers, heads, P, P]; each row sums to 1.

    Entry [b, l, h, i, j] is how much patch i attends to patch j in block l, head h, for window
    b (the target channel's patches when channel-independent). `patch_lags` maps patches to
    lags. The weights are recorded during an ordinary forward pass, so they are those of the
    forecast itself, whatever wraps the transformer (`window_norm`, `baseline_start`) and whether
    it was built or loaded.

    >>> attention_weights(f.model, windows).shape   # lookback 48, patch 16, stride 8
    (n, 2, 4, 6, 6)
    """
    core = core_model(model)
    blocks = [layer for layer in core.layers if isinstance(layer, EncoderBlock)]
    if not blocks:
        raise ValueError(f"{model.name} has no transformer encoder blocks")
    channels = core.input_shape[-1] if core.get_layer("patching").channel_independent else 1
    _recording.scores = {}
    try:
        _backend.predict(model, x, batch_size)
        recorded = _recording.scores
    finally:
        del _recording.scores
    scores = np.stack([np.concatenate(recorded[id(block)]) for block in blocks], axis=1)
    # [B*F or B, layers, heads, P, P]; channel-independent rows are window-major (Patching)
    return scores.reshape(-1, channels, *scores.shape[1:])[:, 0]


class Transformer(ModelSpec):
    """PatchTST-style Transformer encoder over patches of the window.

    >>> dc.Forecaster(target="y", lookback=336, horizon=96, model=dc.models.Transformer())
    """

    name = "transformer"
    summary = "PatchTST-style encoder over window patches (RevIN, channel-independent), flat head"
    options = (
        PATCH_LEN,
        STRIDE,
        D_MODEL,
        HEADS,
        LAYERS,
        FF_DIM,
        DROPOUT,
        CHANNEL_INDEPENDENT,
    )
    attention = True
    dropout_sampling = True
    builder = staticmethod(build_transformer)
    attention_weights = staticmethod(attention_weights)

    @classmethod
    def checked(cls, options: dict) -> dict:
        config = super().checked(options)
        if config["d_model"] % config["heads"]:
            raise ConfigError(
                f"transformer: d_model must be a multiple of heads. Received: "
                f"d_model={config['d_model']}, heads={config['heads']}"
            )
        if config["stride"] > config["patch_len"]:
            raise ConfigError(
                f"transformer: stride must be <= patch_len, or rows between patches are never "
                f"read. Received: stride={config['stride']}, patch_len={config['patch_len']}"
            )
        return config
