"""Each gradient and perturbation method against Captum on the same torch model; the
registry's verbs and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap, InputXGradient, NoiseTunnel, Occlusion, Saliency

from deepcast.errors import ConfigError
from deepcast.explain import Explanation, methods
from deepcast.explain.baselines import gaussian_blur

from .conftest import FEATURES, LOOKBACK

NAMES = ["x1", "x2", "y"]


def forward_of(model, output_index: int = 0):
    """Captum's forward function: a Keras model on the torch backend is a torch.nn.Module."""

    def forward(t: torch.Tensor) -> torch.Tensor:
        return model(t, training=False)[:, output_index]

    return forward


@pytest.mark.parametrize("model_name", ["lstm", "dense_net"])
@pytest.mark.parametrize("output_index", [0, 1])
def test_saliency_and_gradient_x_input_match_captum(request, windows, model_name, output_index):
    model = request.getfixturevalue(model_name)
    forward = forward_of(model, output_index)
    x = torch.from_numpy(windows).requires_grad_()
    saliency = methods.explain(model, windows, "saliency", output_index=output_index)
    expected = Saliency(forward).attribute(x, abs=True).detach().numpy()
    np.testing.assert_allclose(saliency.values, expected, rtol=1e-4, atol=1e-7)
    gxi = methods.explain(model, windows, "gradient_x_input", output_index=output_index)
    expected = InputXGradient(forward).attribute(x).detach().numpy()
    np.testing.assert_allclose(gxi.values, expected, rtol=1e-4, atol=1e-7)
    assert np.abs(gxi.values).sum() > 0 and saliency.method == "saliency"


def test_smoothgrad_matches_captums_noise_tunnel_given_the_same_noise(
    dense_net, windows, monkeypatch
):
    samples, sigma, seed = 8, 0.3, 5
    ours = methods.explain(
        dense_net, windows, "smoothgrad", output_index=1, samples=samples, noise=sigma, seed=seed
    )
    # The noise deepcast documents: copy r (window r // S, sample r % S) takes the next draws
    # of default_rng(seed). Captum draws it with torch.normal, in the same layout.
    noise = np.random.default_rng(seed).normal(0.0, sigma, (len(windows) * samples, LOOKBACK, 3))
    monkeypatch.setattr(torch, "normal", lambda mean, std: torch.from_numpy(noise.astype("f4")))
    theirs = NoiseTunnel(Saliency(forward_of(dense_net, 1))).attribute(
        torch.from_numpy(windows), nt_type="smoothgrad", nt_samples=samples, stdevs=sigma
    )
    np.testing.assert_allclose(ours.values, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
    # The noise matters: without it SmoothGrad is plain saliency, and here it is not.
    plain = methods.explain(dense_net, windows, "saliency", output_index=1)
    assert not np.allclose(ours.values, plain.values, rtol=1e-2)


@pytest.mark.parametrize("window, strides", [((1, 1), None), ((4, 2), (2, 1))])
def test_occlusion_matches_captum(lstm, windows, window, strides):
    baseline = gaussian_blur(windows, sigma=2.0)
    ours = methods.explain(
        lstm, windows, "occlusion", baseline=baseline, window=window, strides=strides
    )
    theirs = Occlusion(forward_of(lstm)).attribute(
        torch.from_numpy(windows),
        sliding_window_shapes=window,
        strides=strides or window,
        baselines=torch.from_numpy(baseline),
    )
    np.testing.assert_allclose(ours.values, theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(ours.baseline, baseline)


def test_occlusion_of_a_linear_model_is_w_times_input_minus_baseline(
    linear, linear_weights, windows
):
    ours = methods.explain(linear, windows, "occlusion", baseline=0.3)
    w = linear_weights[0][:, 0].reshape(LOOKBACK, FEATURES)
    np.testing.assert_allclose(ours.values, w * (windows - 0.3), rtol=1e-4, atol=1e-5)


def test_shap_gradient_agrees_with_captums_gradient_shap(dense_net, windows):
    """Both estimate E_{b, t}[(x - b) grad f(b + t (x - b))] by sampling, with different
    draws; with many samples they meet."""
    background = np.random.default_rng(4).normal(size=(6, LOOKBACK, FEATURES)).astype("f4")
    x = windows[:2]
    ours = methods.explain(dense_net, x, "shap", background=background, samples=3000, seed=1)
    torch.manual_seed(0)
    np.random.seed(0)
    theirs = GradientShap(forward_of(dense_net)).attribute(
        torch.from_numpy(x), baselines=torch.from_numpy(background), n_samples=3000, stdevs=0.0
    )
    theirs = theirs.detach().numpy()
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours.values, theirs, atol=0.06 * scale)
    corr = np.corrcoef(ours.values.ravel(), theirs.ravel())[0, 1]
    assert corr > 0.99


def test_registry_lists_every_method_and_resolves_aliases():
    assert methods.names()[:6] == [
        "integrated_gradients", "saliency", "gradient_x_input", "smoothgrad", "occlusion", "shap",
    ]  # fmt: skip
    assert "attention" in methods.names()
    assert methods.resolve("ig").name == "integrated_gradients"
    assert methods.resolve("Integrated-Gradients").name == "integrated_gradients"
    with pytest.raises(ConfigError, match="unknown explanation method 'lime'; available: integ"):
        methods.resolve("lime")


def test_bad_method_options_are_named(lstm, windows):
    with pytest.raises(ConfigError, match="saliency has no option 'steps'; its options: none"):
        methods.explain(lstm, windows, "saliency", steps=3)
    with pytest.raises(ConfigError, match=r"occlusion: window .* larger than"):
        methods.explain(lstm, windows, "occlusion", window=(LOOKBACK + 1, 1))
    with pytest.raises(ConfigError, match="smoothgrad needs samples >= 1"):
        methods.explain(lstm, windows, "smoothgrad", samples=0)
    with pytest.raises(ConfigError, match="output_index must be in 0..1"):
        methods.explain(lstm, windows, "occlusion", output_index=2)


@pytest.mark.parametrize("name", ["saliency", "smoothgrad", "occlusion", "shap"])
def test_every_method_makes_a_complete_explanation(lstm, windows, name):
    e = methods.explain(lstm, windows, name, feature_names=NAMES, output_index=1)
    assert isinstance(e, Explanation) and e.method == name
    assert e.values.shape == windows.shape and e.lags.tolist() == list(range(LOOKBACK, 0, -1))
    assert e.horizon_step == 2 and e.diagnostics["seconds"] > 0
    expected = lstm.predict(windows, verbose=0)[:, 1]
    np.testing.assert_allclose(e.forecast, expected, rtol=1e-5, atol=1e-6)
    data = e.to_dict()
    assert data["method"] == name and len(data["by_cell"]) == LOOKBACK * FEATURES
    assert "completeness" not in data
    assert "Integrated" not in e.plot().axes[0].get_title()
    with pytest.raises(AttributeError, match="no 'completeness_delta'"):
        e.completeness_delta  # noqa: B018


def test_methods_explain_whatever_rows_they_are_given(dense_net, windows):
    """No method assumes rows == lookback: a window with extra rows is explained whole, and
    `first_rows` keeps the lookback rows (with lags renumbered from 1)."""
    longer = np.concatenate([windows, windows[:, :2]], axis=1)  # [n, L + 2, F]
    model = _dense(LOOKBACK + 2)
    e = methods.explain(model, longer, "occlusion")
    assert e.values.shape == longer.shape and e.lags[-1] == 1
    kept = e.first_rows(LOOKBACK)
    assert kept.values.shape == windows.shape and kept.lags.tolist()[-1] == 1
    np.testing.assert_array_equal(kept.values, e.values[:, :LOOKBACK])


def _dense(rows: int):
    import keras

    from .conftest import seeded

    model = keras.Sequential(
        [keras.Input((rows, FEATURES)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    return seeded(model, 5)
