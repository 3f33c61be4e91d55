"""Saving and loading a model on the torch backend never imports TensorFlow.

Each check runs in a fresh interpreter: TensorFlow, once imported by any test, stays in
`sys.modules` for the rest of the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SAVE_AND_LOAD = """
import json, sys
import numpy as np
import deepcast  # noqa: F401  (what a deepcast user has imported)
import keras

model = keras.Sequential([keras.Input((4, 2)), keras.layers.Flatten(), keras.layers.Dense(3)])
x = np.random.default_rng(0).normal(size=(5, 4, 2)).astype("float32")
model.save(sys.argv[1])
after_save = "tensorflow" in sys.modules
loaded = keras.saving.load_model(sys.argv[1], safe_mode=True, compile=False)
same = np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
print(json.dumps({"backend": keras.backend.backend(), "after_save": after_save,
                  "after_load": "tensorflow" in sys.modules, "same_predictions": bool(same)}))
"""


def run(code: str, *args: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_save_and_load_on_torch_leave_tensorflow_unimported(tmp_path):
    pytest.importorskip("tensorflow")  # without it there is nothing to keep out
    result = run(SAVE_AND_LOAD, str(tmp_path / "model.keras"))
    assert result == {
        "backend": "torch",
        "after_save": False,
        "after_load": False,
        "same_predictions": True,
    }


@pytest.mark.backends
def test_tensorflow_values_still_serialise_once_tensorflow_is_imported():
    pytest.importorskip("tensorflow")
    result = run(
        """
        import json
        import deepcast  # noqa: F401
        import tensorflow as tf
        from keras.saving import serialize_keras_object as serialize

        print(json.dumps({"shape": serialize(tf.TensorShape([2, None])),
                          "dtype": serialize(tf.float32)}))
        """
    )
    assert result == {"shape": [2, None], "dtype": "float32"}
