"""Shared helpers of the model tests."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

# isort: off
import deepcast  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

# isort: on
from deepcast import _backend

BACKENDS = ("tensorflow", "jax")

# Runs in a fresh interpreter, because the Keras backend is fixed at import time.
_LOAD_AND_PREDICT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import deepcast.models  # registers deepcast's custom layers
    from deepcast import _backend

    folder, backend = sys.argv[1], sys.argv[2]
    assert _backend.name() == backend, _backend.name()
    model = keras.saving.load_model(f"{folder}/model.keras", safe_mode=True, compile=False)
    np.save(f"{folder}/forecast_{backend}.npy", _backend.predict(model, np.load(f"{folder}/x.npy")))
    if len(sys.argv) > 3:  # `module:function`(model, x) too, e.g. attention weights
        import importlib

        module, function = sys.argv[3].split(":")
        also = getattr(importlib.import_module(module), function)
        np.save(f"{folder}/also_{backend}.npy", also(model, np.load(f"{folder}/x.npy")))
    """
)


def assert_portable(
    model: keras.Model, x: np.ndarray, tmp_path: Path, tol: float = 1e-4, also: str | None = None
) -> None:
    """Save `model`, load it under TensorFlow and JAX (fresh interpreters, started at once:
    each spends most of its time importing) and check both forecast `x` as torch does, within
    `tol` (relative and absolute). `also` names a `module:function` of (model, x) -> array that
    must agree as well (e.g. "deepcast.models.transformer:attention_weights"). Mark the calling
    test `@pytest.mark.backends`."""
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", np.asarray(x, dtype="float32"))
    expected = _backend.predict(model, x)
    runs = {
        backend: subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LOAD_AND_PREDICT,
                str(tmp_path),
                backend,
                *([also] if also else []),
            ],
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for backend in BACKENDS
    }
    try:
        for backend, run in runs.items():
            output, _ = run.communicate(timeout=300)
            assert run.returncode == 0, f"{backend} failed:\n{output}"
            forecast = np.load(tmp_path / f"forecast_{backend}.npy")
            np.testing.assert_allclose(forecast, expected, rtol=tol, atol=tol, err_msg=backend)
            if also:
                module, function = also.split(":")
                own = getattr(importlib.import_module(module), function)(model, x)
                theirs = np.load(tmp_path / f"also_{backend}.npy")
                np.testing.assert_allclose(theirs, own, rtol=tol, atol=tol, err_msg=backend)
    finally:
        for run in runs.values():  # a failure or time-out leaves no interpreter behind
            if run.poll() is None:
                run.kill()
                run.wait()


def randomised(model, seed: int = 1):
    """Every weight drawn at random, so no test passes because a weight happens to be zero
    (or because a zero-started layer hides what it maps)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.weights])
    return model
