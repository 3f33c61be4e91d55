"""Gradient calls through a recurrent model are capped in rows; other models are not."""

from __future__ import annotations

import numpy as np

from deepcast import _backend, models
from deepcast.explain import methods


def test_recurrent_models_get_small_gradient_calls_and_the_rest_do_not():
    workers = _backend.concurrent_batches()
    wide = _backend.rows_per_call(4096)
    assert wide == 4096 // workers
    for name in ("lstm", "bilstm", "cnn_lstm"):  # bilstm: RNNs nested in Bidirectional
        model = models.build(name, 12, 2, 3, window_norm=True, baseline_start=True)
        assert _backend.rows_per_call(4096, model) == min(wide, _backend.RECURRENT_ROWS), name
    for name in ("nlinear", "transformer"):
        model = models.build(name, 24, 2, 3)
        assert _backend.rows_per_call(4096, model) == wide, name


def test_the_call_size_does_not_change_the_values():
    rng = np.random.default_rng(0)
    model = models.build("lstm", 12, 2, 3, {"units": 8, "layers": 1, "dropout": 0.0})
    x = rng.normal(size=(40, 12, 2)).astype("float32")  # 40 x 50 = 2000 points: many calls
    options = {"samples": 50, "seed": 1, "background": x[:5], "verbose": False}
    capped = methods.explain(model, x, "shap", batch_size=4096, **options).values
    tiny = methods.explain(model, x, "shap", batch_size=7, **options).values
    np.testing.assert_allclose(capped, tiny, rtol=1e-5, atol=1e-6)
