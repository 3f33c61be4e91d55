"""`_backend.predict`: forward calls of the rows a model's layers ask for, subnormals flushed."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deepcast import _backend, models
from deepcast.models import heads


class Recorder(keras.layers.Layer):
    """Identity that notes the rows of every call, and whether subnormals were flushed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.flushed = [], []

    def call(self, x):
        self.rows.append(int(x.shape[0]))
        if _backend.name() == "torch":
            self.flushed.append(_backend.flushing_subnormals())
        return x


class Declares(Recorder):
    def __init__(self, predict_rows: int, **kwargs):
        super().__init__(**kwargs)
        self.predict_rows = predict_rows


class Wrapper(keras.layers.Layer):
    """A layer holding another: its own declaration (if any) covers its part's."""

    def __init__(self, inner: keras.layers.Layer, predict_rows: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        if predict_rows is not None:
            self.predict_rows = predict_rows

    def call(self, x):
        return self.inner(x)


def model_of(*layers: keras.layers.Layer) -> keras.Model:
    return keras.Sequential([keras.Input((3,)), *layers])


def test_predict_calls_in_the_smallest_rows_any_layer_declares_and_keeps_every_row():
    first, second = Declares(8, name="first"), Declares(4, name="second")
    model = model_of(keras.layers.Dense(3), first, second)
    first.rows.clear()
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    out = _backend.predict(model, x)
    assert _backend.predict_rows(model) == 4
    assert first.rows == [4, 4, 2]
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def test_a_layers_declaration_covers_the_layers_inside_it():
    inner = Declares(4)
    assert _backend.predict_rows(model_of(Wrapper(inner))) == 4  # no word of its own: its part's
    assert _backend.predict_rows(model_of(Wrapper(Declares(4), predict_rows=16))) == 16
    assert _backend.predict_rows(model_of(keras.layers.Dense(3))) == _backend.PREDICT_ROWS


@pytest.mark.parametrize(
    "name, rows",
    [("lstm", 128), ("transformer", 1024), ("tft", 64), ("deepar", 1024), ("nlinear", 1024)],
)
def test_each_family_forecasts_in_the_rows_it_was_measured_fastest_at(name, rows):
    """benchmarks/predict_rows.py: recurrent layers at 128 rows a call, the TFT at 64; DeepAR's
    network, the patch transformer and the linear maps at 1024 (DeepAR covers its LSTM's)."""
    family = models.spec(name)
    head = heads.Head(family.default_loss) if family.default_loss == "student_t" else None
    future = [1, 2] if family.future_inputs else None
    model = models.build(name, 24, 3, 6, head=head, future_columns=future)
    assert _backend.predict_rows(model) == rows


@pytest.mark.skipif(_backend.name() != "torch", reason="torch's flush setting")
@pytest.mark.parametrize("caller_flushes", [False, True])
def test_predict_flushes_subnormals_and_restores_the_callers_setting(caller_flushes):
    import torch

    probe = Recorder()
    model = model_of(probe)
    probe.flushed.clear()
    torch.set_flush_denormal(caller_flushes)
    try:
        _backend.predict(model, np.zeros((5, 3), "float32"))
        assert probe.flushed == [True]
        assert _backend.flushing_subnormals() == caller_flushes
    finally:
        torch.set_flush_denormal(False)
