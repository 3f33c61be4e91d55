"""Attention explanations of the transformer, against its attention recomputed layer by layer
with Keras, and refused for models that declare none."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.explain import methods
from deepcast.models.transformer import build_transformer

from .conftest import FEATURES, LOOKBACK, seeded

SPEC = dc.models.Transformer(patch_len=4, stride=2, d_model=8, heads=2, layers=1, dropout=0.0)


@pytest.fixture(scope="module")
def transformer() -> keras.Model:
    return seeded(build_transformer(LOOKBACK, FEATURES, 2, **SPEC.config), 6, scale=0.3)


def test_lag_weights_are_the_attention_each_patch_receives(transformer, windows):
    e = methods.explain(transformer, windows, "attention", spec=SPEC, feature_names=["a", "b", "y"])
    # Independent path: the encoder's input tokens, then its attention layer called directly.
    tokens = keras.Model(transformer.input, transformer.get_layer("embedding_dropout").output)
    block = transformer.get_layer("encoder_1")
    h = block.attention_norm(tokens(windows))
    _, scores = block.attention(h, h, return_attention_scores=True)  # [B*F, heads, P, P]
    scores = keras.ops.convert_to_numpy(scores)[::FEATURES]  # channel 0 (the target) per window
    received = scores.mean(axis=(1, 2))  # [B, P]
    starts = np.arange(0, LOOKBACK + 2 - 4 + 1, 2)  # stride 2, patch 4, end padding of 2 rows
    expected = np.zeros((len(windows), LOOKBACK))
    for p, s in enumerate(starts):
        for row in range(s, s + 4):
            expected[:, min(row, LOOKBACK - 1)] += received[:, p] / 4
    np.testing.assert_allclose(e.values[:, :, 0], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e.values.sum(axis=(1,))[:, 0], 1.0, rtol=1e-5)
    # No feature axis: every feature of a lag holds the lag's weight, and it says so.
    assert not e.feature_axis and np.all(e.values == e.values[:, :, :1])
    with pytest.raises(ConfigError, match="attention weighs lags only"):
        e.by_feature()
    assert set(e.top_cells(3).feature) == {"(all features)"}
    assert "by_cell" not in e.to_dict() and len(e.to_dict()["by_lag"]) == LOOKBACK
    ax = e.plot().axes[0]
    assert "Attention" in ax.get_title() and [t.get_text() for t in ax.get_yticklabels()] == [
        "all features"
    ]


def test_attention_is_refused_for_models_without_it(lstm, windows):
    with pytest.raises(ConfigError, match="needs a model that declares attention .*; lstm does"):
        methods.explain(lstm, windows, "attention", spec=dc.models.LSTM())
    with pytest.raises(ConfigError, match="needs a model that declares attention"):
        methods.explain(lstm, windows, "attention")
