"""deepcast's SHAP against the `shap` package itself and against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch

from deepcast.errors import ConfigError
from deepcast.explain import methods

from .conftest import FEATURES, LOOKBACK


class Column(torch.nn.Module):
    """One forecast step of a Keras model (a torch.nn.Module on the torch backend), [B, 1]."""

    def __init__(self, model, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(x, training=False)[:, self.k : self.k + 1]


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    return np.random.default_rng(8).normal(size=(7, LOOKBACK, FEATURES)).astype("float32")


@pytest.mark.parametrize("model_name", ["lstm", "dense_net"])
def test_gradient_algorithm_equals_shaps_gradient_explainer(
    request, windows, background, model_name
):
    model = request.getfixturevalue(model_name)
    ours = methods.explain(
        model, windows, "shap", output_index=1, background=background, samples=40, seed=3
    )
    explainer = shap.GradientExplainer(Column(model, 1), torch.from_numpy(background))
    theirs = explainer.shap_values(torch.from_numpy(windows), nsamples=40, rseed=3)
    theirs = np.asarray(theirs).reshape(windows.shape)  # [n, L, F, 1 output] -> [n, L, F]
    np.testing.assert_allclose(ours.values, theirs, rtol=1e-4, atol=1e-6)
    expected = model.predict(background, verbose=0)[:, 1].mean()
    assert ours.diagnostics["expected_value"] == pytest.approx(expected, rel=1e-5)


def test_both_algorithms_are_exact_on_a_linear_model(linear, linear_weights, windows, background):
    # For f(x) = w . x + c with absent cells taken from background windows, every cell's
    # SHAP value is w_i (x_i - mean_b b_i). Permutation sampling is exact for any background;
    # expected gradients (a random path point per sample) is exact with one background window.
    w = linear_weights[0][:, 0].reshape(LOOKBACK, FEATURES)
    e = methods.explain(linear, windows, "shap", algorithm="permutation", background=background)
    np.testing.assert_allclose(e.values, w * (windows - background.mean(axis=0)), atol=1e-4)
    f = linear.predict(windows, verbose=0)[:, 0]
    np.testing.assert_allclose(
        e.values.sum(axis=(1, 2)), f - e.diagnostics["expected_value"], atol=1e-4
    )
    one = background[:1]
    e = methods.explain(linear, windows, "shap", background=one, samples=5)
    np.testing.assert_allclose(e.values, w * (windows - one), atol=1e-4)


def test_permutation_algorithm_is_exact_for_a_pairwise_interaction(windows, background):
    """f(x) = 2 x_a + x_a x_b: Shapley values of the set function v(S) = mean_b f(x on S, b
    elsewhere), worked out by hand, which antithetic permutations reach exactly."""
    import keras

    a, b = (3, 0), (7, 2)  # (row, feature) cells
    inputs = keras.Input((LOOKBACK, FEATURES))
    xa, xb = inputs[:, a[0], a[1]], inputs[:, b[0], b[1]]
    model = keras.Model(inputs, keras.ops.stack([2 * xa + xa * xb], axis=1))
    e = methods.explain(
        model, windows, "shap", algorithm="permutation", background=background, seed=2
    )
    x_a, x_b = windows[:, a[0], a[1]], windows[:, b[0], b[1]]
    m_a, m_b = background[:, a[0], a[1]].mean(), background[:, b[0], b[1]].mean()
    m_ab = (background[:, a[0], a[1]] * background[:, b[0], b[1]]).mean()
    # v(0) = 2 m_a + m_ab, v(a) = 2 x_a + x_a m_b, v(b) = 2 m_a + m_a x_b, v(ab) = 2 x_a + x_a x_b
    v0, va, vb, vab = 2 * m_a + m_ab, 2 * x_a + x_a * m_b, 2 * m_a + m_a * x_b, 2 * x_a + x_a * x_b
    np.testing.assert_allclose(e.values[:, a[0], a[1]], 0.5 * ((va - v0) + (vab - vb)), atol=1e-4)
    np.testing.assert_allclose(e.values[:, b[0], b[1]], 0.5 * ((vb - v0) + (vab - va)), atol=1e-4)
    others = np.ones(e.values.shape[1:], bool)
    others[a], others[b] = False, False
    np.testing.assert_allclose(e.values[:, others], 0.0, atol=1e-5)


def test_bad_shap_options_are_named(lstm, windows):
    with pytest.raises(ConfigError, match="algorithm must be one of"):
        methods.explain(lstm, windows, "shap", algorithm="deep")
    with pytest.raises(ConfigError, match=r"background must be windows \[m, 12, 3\]"):
        methods.explain(lstm, windows, "shap", background=np.zeros((2, 5, 3)))
