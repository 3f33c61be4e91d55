"""transformer: patching against a numpy unfold, attention against a numpy oracle, options,
learning, dropout sampling, saving and portability."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deepcast as dc
from deepcast import _backend, models
from deepcast.errors import ConfigError
from deepcast.models.transformer import (
    Patching,
    attention_weights,
    build_transformer,
    patch_lags,
)
from deepcast.models.window_norm import EPSILON

from .conftest import assert_portable

SMALL = {"patch_len": 8, "stride": 4, "d_model": 16, "heads": 2, "layers": 2}


def windows(n=6, lookback=30, features=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, lookback, features)).astype("float32")


def unfold(x: np.ndarray, patch_len: int, stride: int) -> np.ndarray:
    """PatchTST's patching in numpy: pad the end with `stride` copies of the newest row, then
    every `patch_len` rows, `stride` apart. [B, L, F] -> [B, P, F, patch_len]."""
    padded = np.pad(x, ((0, 0), (0, stride), (0, 0)), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, patch_len, axis=1)[:, ::stride]


def numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("channel_independent", [True, False])
def test_shapes(channel_independent):
    model = build_transformer(30, 3, 5, channel_independent=channel_independent, **SMALL)
    assert model.output_shape == (None, 5)
    n_patches = (30 - 8) // 4 + 2
    assert patch_lags(30, 8, 4).shape == (n_patches, 8)
    assert model.get_layer("patching").output.shape[1:] == (
        (n_patches, 8) if channel_independent else (n_patches, 8 * 3)
    )
    x = windows()
    assert numpy(model(x)).shape == (6, 5)
    assert attention_weights(model, x).shape == (6, 2, 2, n_patches, n_patches)


@pytest.mark.parametrize("lookback, patch_len, stride", [(30, 8, 4), (50, 16, 12), (9, 9, 1)])
@pytest.mark.parametrize("channel_independent", [True, False])
def test_patching_equals_a_numpy_unfold_of_the_padded_window(
    lookback, patch_len, stride, channel_independent
):
    x = windows(lookback=lookback)
    patches = numpy(Patching(patch_len, stride, channel_independent)(x))
    expected = unfold(x, patch_len, stride)  # [B, P, F, patch_len]
    if channel_independent:  # row b*F + f: channel f of window b
        expected = expected.transpose(0, 2, 1, 3).reshape(-1, expected.shape[1], patch_len)
    else:  # element (j, f) of a patch at j*F + f
        expected = expected.transpose(0, 1, 3, 2).reshape(len(x), expected.shape[1], -1)
    np.testing.assert_array_equal(patches, expected)
    # The documented lag of every patch element is the lag of the padded row it holds.
    rows = np.arange(lookback, dtype="float32")[None, :, None]  # window row i has lag L - i
    lags = lookback - unfold(rows, patch_len, stride)[0, :, 0].astype(int)
    np.testing.assert_array_equal(patch_lags(lookback, patch_len, stride), lags)
    assert patch_lags(lookback, patch_len, stride).max() == lookback  # the oldest row is read


def test_attention_weights_equal_a_numpy_oracle_for_the_target_channel():
    """One block: RevIN, unfold, embedding, position, layer norm, query/key projections and a
    softmax written out in numpy from the model's weights; the target channel's rows only."""
    _backend.seed_everything(1)
    model = build_transformer(30, 3, 4, **{**SMALL, "layers": 1})
    x = windows() * np.array([1.0, 5.0, 0.2], "float32") + 3.0
    normalised = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(
        x.var(axis=1, keepdims=True) + EPSILON
    )
    target_patches = unfold(normalised, 8, 4)[:, :, 0]  # [B, P, patch_len]
    embedding = model.get_layer("patch_embedding")
    tokens = target_patches @ numpy(embedding.kernel) + numpy(embedding.bias)
    tokens = tokens + numpy(model.get_layer("position").position)  # [B, P, d]
    block = model.get_layer("encoder_1")
    mean, var = tokens.mean(-1, keepdims=True), tokens.var(-1, keepdims=True)
    h = (tokens - mean) / np.sqrt(var + 1e-5) * numpy(block.attention_norm.gamma)
    h = h + numpy(block.attention_norm.beta)
    q, k = (
        np.einsum("bpd,dhk->bphk", h, numpy(dense.kernel)) + numpy(dense.bias)
        for dense in (block.attention.query_dense, block.attention.key_dense)
    )
    logits = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(q.shape[-1])
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)  # [B, heads, P, P]
    weights = attention_weights(model, x)
    np.testing.assert_allclose(weights[:, 0], expected, atol=1e-5)


def test_attention_weights_sum_to_one_follow_the_input_and_survive_wrapping_and_saving(
    tmp_path,
):
    _backend.seed_everything(0)
    model = models.build("transformer", 30, 3, 4, SMALL)
    x = windows()
    weights = attention_weights(model, x)
    assert weights.shape == (6, 2, 2, 7, 7)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert (weights >= 0).all()
    reshaped = x.copy()
    reshaped[:, 10:20, 0] = reshaped[:, 10:20, 0] ** 2
    assert np.abs(attention_weights(model, reshaped) - weights).max() > 1e-3
    # Per-window normalisation: moving or stretching a channel changes nothing.
    affine = x * np.array([3.0, 1.0, 0.5], "float32") + 7.0
    np.testing.assert_allclose(attention_weights(model, affine), weights, atol=1e-4)

    wrapped = models.build("transformer", 30, 3, 4, SMALL, window_norm=True, baseline_start=True)
    models.core_model(wrapped).set_weights(model.get_weights())
    np.testing.assert_allclose(attention_weights(wrapped, x), weights, atol=1e-4)

    wrapped.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(attention_weights(loaded, x), attention_weights(wrapped, x))
    np.testing.assert_allclose(numpy(loaded(x)), numpy(wrapped(x)), rtol=1e-6)


def test_mixed_channels_save_and_load(tmp_path):
    model = models.build("transformer", 30, 3, 4, {**SMALL, "channel_independent": False})
    x = windows()
    model.save(tmp_path / "mixed.keras")
    loaded = keras.saving.load_model(tmp_path / "mixed.keras", safe_mode=True)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-6)
    np.testing.assert_allclose(attention_weights(loaded, x), attention_weights(model, x))


def test_options_are_declared_and_validated():
    family = models.spec("transformer")
    assert family.attention and family.dropout_sampling
    assert family.attention_weights is attention_weights
    assert models.configure("transformer").config == {
        "patch_len": 16,
        "stride": 8,
        "d_model": 64,
        "heads": 4,
        "layers": 2,
        "ff_dim": 0,
        "dropout": 0.1,
        "channel_independent": True,
    }
    with pytest.raises(ConfigError, match="transformer: patch_len must be an int >= 1"):
        models.configure("transformer", {"patch_len": 0})
    with pytest.raises(ConfigError, match="d_model must be a multiple of heads.*d_model=30"):
        models.configure("transformer", {"d_model": 30, "heads": 4})
    with pytest.raises(ConfigError, match="stride must be <= patch_len.*stride=16"):
        models.Transformer(patch_len=8, stride=16)
    with pytest.raises(ConfigError, match="patch_len=16 is longer than the window.*lookback=12"):
        models.build("transformer", 12, 1, 2)
    with pytest.raises(ConfigError, match="units=8 sets the model's option 'units'"):
        dc.Forecaster("y", model="transformer", units=8).configured_model()
    shorthand = dc.Forecaster("y", model="transformer", layers=1, dropout=0.2)
    assert shorthand.configured_model() == models.Transformer(layers=1, dropout=0.2)
    # The default search space only draws valid combinations.
    search = family.default_search()
    assert all(d % h == 0 for d in search["d_model"] for h in search["heads"])
    assert max(search["stride"]) <= min(search["patch_len"])


def test_ff_dim_zero_means_twice_d_model():
    model = build_transformer(30, 3, 4, **SMALL)
    assert model.get_layer("encoder_1").ff_in.units == 32
    model = build_transformer(30, 3, 4, **SMALL, ff_dim=24)
    assert model.get_layer("encoder_1").ff_in.units == 24


def test_dropout_samples_in_training_only():
    _backend.seed_everything(0)
    model = models.build("transformer", 30, 3, 4, {**SMALL, "dropout": 0.3})
    x = windows(16)
    a, b = (numpy(model(x, training=True)) for _ in range(2))
    c, d = (numpy(model(x, training=False)) for _ in range(2))
    np.testing.assert_array_equal(c, d)
    assert np.abs(a - b).max() > 1e-4


@pytest.mark.backends
def test_saved_under_torch_forecasts_and_attends_the_same_under_tensorflow_and_jax(tmp_path):
    _backend.seed_everything(0)
    model = models.build("transformer", 30, 3, 4, SMALL, window_norm=True)
    assert_portable(
        model, windows(), tmp_path, also="deepcast.models.transformer:attention_weights"
    )
