"""cnn_lstm: causal convolutions (no look-ahead), shapes, options, learning, portability."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deepcast as dc
from deepcast import _backend, models
from deepcast.errors import ConfigError
from deepcast.models.cnn_lstm import build_cnn_lstm, receptive_field
from deepcast.models.fused_lstm import FusedLSTM

from .conftest import assert_portable


def windows(n=8, lookback=30, features=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, lookback, features)).astype("float32")


def conv_stack(model: keras.Model) -> keras.Model:
    """The model's convolutions alone: window -> the last conv layer's output [B, L, filters]."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    return keras.Model(model.input, convs[-1].output)


@pytest.mark.parametrize("conv_layers, layers", [(1, 1), (3, 2)])
def test_shapes_and_layers(conv_layers, layers):
    model = build_cnn_lstm(30, 3, 5, filters=8, conv_layers=conv_layers, units=6, layers=layers)
    assert model.output_shape == (None, 5)
    assert conv_stack(model).output_shape == (None, 30, 8)
    assert sum(isinstance(la, keras.layers.Conv1D) for la in model.layers) == conv_layers
    assert sum(isinstance(la, FusedLSTM) for la in model.layers) == layers
    assert keras.ops.convert_to_numpy(model(windows())).shape == (8, 5)


@pytest.mark.parametrize("dilation", [1, 2])
def test_convolutions_never_look_ahead(dilation):
    """Perturb window row t: no conv output before t moves, and the rows it reaches are
    exactly t .. t + receptive field - 1."""
    _backend.seed_everything(0)
    model = build_cnn_lstm(30, 3, 2, filters=16, kernel_size=3, dilation=dilation, conv_layers=3)
    stack = conv_stack(model)
    x = windows()
    base = keras.ops.convert_to_numpy(stack(x))
    reach = receptive_field(3, dilation, 3)
    for t in (0, 7, 29):
        moved = x.copy()
        moved[:, t, :] += 5.0
        changed = np.abs(keras.ops.convert_to_numpy(stack(moved)) - base).max(axis=(0, 2)) > 1e-6
        assert not changed[:t].any(), f"row {t} changed outputs before it"
        assert changed[t], f"row {t} did not reach its own output"
        assert not changed[t + reach :].any()
        assert changed[min(t + reach - 1, 29)]


def test_options_are_declared_and_validated():
    family = models.spec("cnn_lstm")
    assert family.option_names() == (
        "filters",
        "kernel_size",
        "dilation",
        "conv_layers",
        "units",
        "layers",
        "dropout",
    )
    assert all(o.search is not None for o in family.options)
    with pytest.raises(ConfigError, match="cnn_lstm: kernel_size must be an int >= 1"):
        models.configure("cnn_lstm", {"kernel_size": 0})
    with pytest.raises(ConfigError, match="cnn_lstm has no option 'filtres'"):
        models.CNNLSTM(filtres=8)
    assert dc.Forecaster("y", model="cnn_lstm", units=16).configured_model().config["units"] == 16


def test_dropout_samples_in_training_only():
    _backend.seed_everything(0)
    model = models.build("cnn_lstm", 30, 3, 4, {"filters": 8, "units": 8, "dropout": 0.3})
    x = windows(16)
    a, b = (keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2))
    c, d = (keras.ops.convert_to_numpy(model(x, training=False)) for _ in range(2))
    np.testing.assert_array_equal(c, d)
    assert np.abs(a - b).max() > 1e-4
    assert models.spec("cnn_lstm").dropout_sampling


@pytest.mark.backends
def test_saved_under_torch_forecasts_the_same_under_tensorflow_and_jax(tmp_path):
    _backend.seed_everything(0)
    model = models.build("cnn_lstm", 30, 3, 4, {"filters": 8, "dilation": 2, "units": 8})
    assert_portable(model, windows(), tmp_path)
