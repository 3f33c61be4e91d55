"""Small seeded models and windows shared by the explain tests (torch backend)."""

from __future__ import annotations

import numpy as np
import pytest

# isort: off
import deepcast  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

# isort: on
from deepcast.models.lstm import build_lstm

LOOKBACK, FEATURES = 12, 3


def seeded(model: keras.Model, seed: int, scale: float = 0.4) -> keras.Model:
    """Overwrite every weight with seeded normal noise: deterministic on any backend."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, scale, w.shape).astype("float32") for w in model.weights])
    return model


@pytest.fixture(scope="session")
def windows() -> np.ndarray:
    """Six scaled windows [6, LOOKBACK, FEATURES]."""
    return np.random.default_rng(1).normal(size=(6, LOOKBACK, FEATURES)).astype("float32")


@pytest.fixture(scope="session")
def lstm() -> keras.Model:
    """2 x 16 LSTM to a 2-step horizon, random weights."""
    return seeded(build_lstm(LOOKBACK, FEATURES, horizon=2, units=16, layers=2, dropout=0.0), 0)


@pytest.fixture(scope="session")
def dense_net() -> keras.Model:
    """A nonlinear dense net on the flattened window: tanh and softplus make IG non-trivial."""
    model = keras.Sequential(
        [
            keras.Input((LOOKBACK, FEATURES)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dense(8, activation="softplus"),
            keras.layers.Dense(2),
        ]
    )
    return seeded(model, 2)


@pytest.fixture(scope="session")
def linear_weights() -> list[np.ndarray]:
    """Kernel [LOOKBACK * FEATURES, 1] and bias [1] of the `linear` model."""
    rng = np.random.default_rng(3)
    return [rng.normal(size=(LOOKBACK * FEATURES, 1)).astype("float32"), np.array([0.7], "float32")]


@pytest.fixture(scope="session")
def linear(linear_weights) -> keras.Model:
    """Flatten + Dense(1): IG must equal w * (x - baseline) exactly."""
    model = keras.Sequential(
        [keras.Input((LOOKBACK, FEATURES)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.set_weights(linear_weights)
    return model
