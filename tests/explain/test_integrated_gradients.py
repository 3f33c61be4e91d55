"""Integrated Gradients against a closed form, against Captum, and against its own axioms."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from deepcast import _backend
from deepcast.errors import ConfigError
from deepcast.explain import integrated_gradients
from deepcast.explain.baselines import gaussian_blur
from deepcast.models.lstm import build_lstm

from .conftest import FEATURES, LOOKBACK


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_linear_model_gets_exactly_w_times_input_minus_baseline(
    linear, linear_weights, windows, method
):
    baseline = np.full((LOOKBACK, FEATURES), 0.3, dtype="float32")
    r = integrated_gradients(linear, windows, baseline, steps=8, method=method)
    kernel, _ = linear_weights
    w = kernel[:, 0].reshape(LOOKBACK, FEATURES)  # Flatten keeps (lag, feature) row-major
    np.testing.assert_allclose(r.attributions, w * (windows - baseline), atol=1e-5)
    np.testing.assert_allclose(r.completeness_delta, 0.0, atol=1e-5)


@pytest.mark.parametrize("model_name", ["lstm", "dense_net"])
@pytest.mark.parametrize("output_index", [0, 1])
def test_matches_captum(request, windows, model_name, output_index):
    model = request.getfixturevalue(model_name)
    baseline = gaussian_blur(windows, sigma=2.0)
    ours = integrated_gradients(model, windows, baseline, steps=32, output_index=output_index)

    # A Keras model on the torch backend is a torch.nn.Module: Captum differentiates it directly.
    def forward(t: torch.Tensor) -> torch.Tensor:
        return model(t, training=False)[:, output_index]

    theirs = IntegratedGradients(forward).attribute(
        torch.from_numpy(windows), torch.from_numpy(baseline), n_steps=32, method="gausslegendre"
    )
    assert rel_l2(ours.attributions, theirs.detach().numpy()) < 1e-2


def test_completeness_gap_matches_captums_convergence_delta(lstm, windows):
    # Two midpoint steps from a zero baseline leave a clear gap. Captum's midpoint rule is
    # ours exactly, and it measures the gap with its own forward passes at x and baseline.
    x = windows * 3
    baseline = np.zeros_like(x)
    with pytest.warns(UserWarning, match="more steps"):
        ours = integrated_gradients(
            lstm, x, baseline, steps=2, method="riemann_middle", output_index=1
        )

    def forward(t: torch.Tensor) -> torch.Tensor:
        return lstm(t, training=False)[:, 1]

    _, delta = IntegratedGradients(forward).attribute(
        torch.from_numpy(x),
        torch.from_numpy(baseline),
        n_steps=2,
        method="riemann_middle",
        return_convergence_delta=True,
    )
    delta = delta.detach().numpy()
    assert np.abs(delta).min() > 1e-2  # a gap worth comparing, far above float32 noise
    np.testing.assert_allclose(ours.completeness_delta, delta, rtol=1e-3, atol=1e-5)
    with torch.no_grad():
        at_baseline = forward(torch.from_numpy(baseline)).numpy()
        change = forward(torch.from_numpy(x)).numpy() - at_baseline
    np.testing.assert_allclose(ours.baseline_forecast, at_baseline, rtol=1e-5, atol=1e-6)
    gap = np.median(np.abs(delta) / np.maximum(np.abs(change), 1e-6))
    assert ours.relative_gap == pytest.approx(gap, rel=1e-3)


def test_completeness_on_a_trained_lstm():
    # Tiny sine + noise problem: the newest rows of y and x1 carry the signal.
    rng = np.random.default_rng(0)
    t = np.arange(700)
    y = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=t.size)
    series = np.stack([np.cos(2 * np.pi * t / 24), rng.normal(size=t.size), y], axis=1)
    x = np.lib.stride_tricks.sliding_window_view(series[:-1], 24, axis=0)  # [N, F, 24]
    x = np.ascontiguousarray(x.transpose(0, 2, 1), dtype="float32")  # [N, 24, F]
    target = y[24:].astype("float32")[:, None]
    _backend.seed_everything(0)  # the initial weights
    model = build_lstm(24, 3, horizon=1, units=16, layers=1, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    history = model.fit(x, target, epochs=4, batch_size=128, verbose=0)  # 24 steps, ~1 s
    assert history.history["loss"][-1] < 0.05  # it learned something worth explaining

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a gap above 1% would warn: fail instead
        r = integrated_gradients(model, x[-64:], "zeros", steps=64)
    assert r.relative_gap < 0.01
    change = r.forecast - r.baseline_forecast
    np.testing.assert_allclose(r.attributions.sum(axis=(1, 2)), change, atol=1e-3)


def test_warns_when_the_integral_is_too_coarse(lstm, windows):
    with pytest.warns(UserWarning, match="more steps"):
        r = integrated_gradients(lstm, windows * 3, "zeros", steps=2, method="riemann_trapezoid")
    assert r.relative_gap > 0.01


def test_batch_size_does_not_change_the_result(lstm, windows):
    small = integrated_gradients(lstm, windows, "blur", steps=16, batch_size=7)
    large = integrated_gradients(lstm, windows, "blur", steps=16, batch_size=10_000)
    np.testing.assert_allclose(small.attributions, large.attributions, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(small.forecast, large.forecast, rtol=1e-6)


def test_result_fields(lstm, windows):
    r = integrated_gradients(lstm, windows, "zeros", steps=8, output_index=1)
    n = len(windows)
    assert r.attributions.shape == r.inputs.shape == r.baseline.shape == windows.shape
    assert r.forecast.shape == r.baseline_forecast.shape == r.completeness_delta.shape == (n,)
    with torch.no_grad():
        expected = lstm(torch.from_numpy(windows), training=False)[:, 1].numpy()
    np.testing.assert_allclose(r.forecast, expected, rtol=1e-5)
    assert (r.output_index, r.steps, r.method) == (1, 8, "gausslegendre")


def test_rejects_bad_inputs(lstm, windows):
    with pytest.raises(ConfigError, match="lookback"):
        integrated_gradients(lstm, windows[0])
    with pytest.raises(ConfigError, match="batch_size"):
        integrated_gradients(lstm, windows, batch_size=0)
    with pytest.raises(ConfigError, match=r"output_index must be in 0\.\.1"):
        integrated_gradients(lstm, windows, output_index=2)
