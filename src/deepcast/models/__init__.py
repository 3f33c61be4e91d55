"""Model registry: a name maps to a spec class that declares capabilities and builds the model.

The framework asks a spec what it supports (`supports_dropout_sampling`, ...) instead of
special-casing model names.
"""

from __future__ import annotations

import keras

from deepcast.errors import ConfigError
from deepcast.models.lstm import LSTMSpec

REGISTRY = {spec.name: spec for spec in (LSTMSpec,)}


def names() -> list[str]:
    return sorted(REGISTRY)


def spec(name: str):
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(names())}") from None


def build(
    name: str, lookback: int, n_features: int, horizon: int, hyperparameters: dict
) -> keras.Model:
    """Build model `name` for windows (lookback, n_features) -> (horizon,)."""
    return spec(name).build(lookback, n_features, horizon, **hyperparameters)
