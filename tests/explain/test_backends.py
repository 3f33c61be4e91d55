"""Gradients per backend: the same saved model explained under torch, TensorFlow and JAX gives
the same attributions, and torch's concurrent batches come back in order."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from deepcast import _backend
from deepcast.explain import integrated_gradients
from deepcast.models.lstm import build_lstm

from .conftest import FEATURES, LOOKBACK, seeded

# Runs in a fresh interpreter, because the Keras backend is fixed at import time.
SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import deepcast.models.lstm  # registers FusedLSTM for loading
    from deepcast import _backend
    from deepcast.explain import integrated_gradients

    folder = sys.argv[1]
    assert _backend.name() == sys.argv[2], _backend.name()
    model = keras.saving.load_model(f"{folder}/model.keras", safe_mode=True)
    x = np.load(f"{folder}/inputs.npy")
    r = integrated_gradients(model, x, "blur", steps=16, output_index=1, batch_size=50)
    np.save(f"{folder}/attributions_{sys.argv[2]}.npy", r.attributions)
    np.save(f"{folder}/forecast_{sys.argv[2]}.npy", r.forecast)
    """
)


@pytest.mark.backends
def test_tensorflow_and_jax_agree_with_torch(tmp_path, windows):
    model = seeded(build_lstm(LOOKBACK, FEATURES, horizon=2, units=8, layers=2, dropout=0.0), 5)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "inputs.npy", windows)
    torch_result = integrated_gradients(model, windows, "blur", steps=16, output_index=1)

    # Both backends start at once: each spends most of its time importing.
    runs = {
        backend: subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(tmp_path), backend],
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in ("tensorflow", "jax")
    }
    for backend, run in runs.items():
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, f"{backend} failed:\n{output}"
        attributions = np.load(tmp_path / f"attributions_{backend}.npy")
        forecast = np.load(tmp_path / f"forecast_{backend}.npy")
        np.testing.assert_allclose(forecast, torch_result.forecast, rtol=1e-4, atol=1e-6)
        error = np.linalg.norm(attributions - torch_result.attributions)
        assert error / np.linalg.norm(torch_result.attributions) < 1e-4, backend


def test_map_batches_keeps_order_and_torch_threads():
    threads = torch.get_num_threads()
    batches = (np.full((3, 2), i, dtype="float32") for i in range(7))
    sums = list(_backend.map_batches(lambda a: float(a.sum()), batches))
    assert sums == [6.0 * i for i in range(7)]
    assert torch.get_num_threads() == threads
