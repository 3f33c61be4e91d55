"""The fused LSTM must compute exactly what keras.layers.LSTM computes, with the same weights."""

import keras
import numpy as np
import pytest
import torch

from deepcast import models
from deepcast.errors import ConfigError
from deepcast.models import fused_lstm as fused_module
from deepcast.models.bilstm import build_bilstm
from deepcast.models.fused_lstm import FusedLSTM
from deepcast.models.lstm import build_lstm

from .conftest import assert_portable


def stock_twin(model: keras.Model, bidirectional: bool) -> keras.Model:
    """The same architecture with stock keras.layers.LSTM, sharing `model`'s weights."""
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    lstm_layers = [
        la for la in model.layers if isinstance(la, FusedLSTM | keras.layers.Bidirectional)
    ]
    for i in range(len(lstm_layers)):
        rnn = keras.layers.LSTM(16, return_sequences=i < len(lstm_layers) - 1)
        x = keras.layers.Bidirectional(rnn)(x) if bidirectional else rnn(x)
    twin = keras.Model(inputs, keras.layers.Dense(model.output_shape[-1])(x))
    twin.set_weights(model.get_weights())
    return twin


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_forward_and_gradients_match_stock_keras(bidirectional):
    keras.utils.set_random_seed(0)
    build = build_bilstm if bidirectional else build_lstm
    model = build(12, 3, 2, units=16, layers=2, dropout=0.0)
    twin = stock_twin(model, bidirectional)
    x = np.random.default_rng(1).normal(size=(8, 12, 3)).astype("float32")

    xa = torch.tensor(x, requires_grad=True)
    xb = torch.tensor(x, requires_grad=True)
    out_fused, out_stock = model(xa), twin(xb)
    torch.testing.assert_close(out_fused, out_stock, atol=1e-5, rtol=1e-5)

    out_fused.sum().backward()
    out_stock.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-4)
    for p_fused, p_stock in zip(model.trainable_variables, twin.trainable_variables):
        torch.testing.assert_close(p_fused.value.grad, p_stock.value.grad, atol=1e-5, rtol=1e-4)


def test_fused_kernel_is_taken_on_cpu_and_stock_loop_otherwise(monkeypatch):
    calls = []
    real = fused_module._fused_torch_lstm
    monkeypatch.setattr(
        fused_module, "_fused_torch_lstm", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    x = np.zeros((2, 5, 3), "float32")
    FusedLSTM(4)(x)
    assert calls == [1]
    # Recurrent dropout is outside what the fused kernel computes: stock path, no call.
    FusedLSTM(4, recurrent_dropout=0.2)(x, training=True)
    assert calls == [1]


def test_input_dropout_is_applied_in_training_only():
    keras.utils.set_random_seed(0)
    layer = FusedLSTM(8, dropout=0.5)
    x = np.random.default_rng(0).normal(size=(64, 6, 3)).astype("float32")
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    again = keras.ops.convert_to_numpy(layer(x, training=False))
    training = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(inference, again)
    assert np.abs(training - inference).max() > 1e-3


def test_registry_builds_lstm_and_rejects_unknown_names():
    model = models.build("lstm", 10, 2, 4, {"units": 8, "layers": 3, "dropout": 0.0})
    assert model.output_shape == (None, 4)
    assert sum(isinstance(la, FusedLSTM) for la in model.layers) == 3
    with pytest.raises(ConfigError, match="unknown model 'gru'.*lstm"):
        models.build("gru", 10, 2, 4, {})


def test_bilstm_runs_both_directions_on_the_fused_kernel(monkeypatch):
    calls = []
    real = fused_module._fused_torch_lstm

    def spy(*args, **kwargs):
        calls.append(kwargs["go_backwards"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fused_module, "_fused_torch_lstm", spy)
    model = models.build("bilstm", 10, 2, 3, {"units": 4, "layers": 2})
    model(np.zeros((2, 10, 2), "float32"))
    assert sorted(calls) == [False, False, True, True]  # two layers, each both ways


@pytest.mark.backends
def test_lstm_and_bilstm_with_the_baseline_start_forecast_the_same_under_tensorflow_and_jax(
    tmp_path,
):
    """The fused layers are plain keras.layers.LSTM elsewhere; the baseline path and its gate
    load by name. One model holds both families, so one pair of interpreters checks both."""
    options = {"units": 8, "layers": 2, "dropout": 0.2}
    x = np.random.default_rng(0).normal(size=(16, 12, 3)).astype("float32")
    inputs = keras.Input((12, 3))
    lstm = models.build("lstm", 12, 3, 2, options, baseline_start=True)
    bilstm = models.build("bilstm", 12, 3, 2, options, window_norm=True, baseline_start=True)
    both = keras.Model(inputs, keras.layers.Concatenate()([lstm(inputs), bilstm(inputs)]))
    for variable in both.weights:  # a non-trivial baseline path and gate, not the zero start
        variable.assign(np.random.default_rng(1).normal(size=variable.shape) * 0.3)
    assert_portable(both, x, tmp_path)
