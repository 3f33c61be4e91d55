import numpy as np
import pytest

from deepcast.errors import ConfigError
from deepcast.explain import integrated_gradients
from deepcast.explain.baselines import gaussian_blur, resolve_baseline


def test_zeros_is_the_training_mean_in_scaled_space(windows):
    b = resolve_baseline("zeros", windows)
    assert b.shape == windows.shape and b.dtype == np.float32 and not b.any()


def test_blur_matches_a_hand_convolution(windows):
    sigma = 1.5
    b = resolve_baseline("blur", windows, blur_sigma=sigma)
    assert b.shape == windows.shape and b.dtype == np.float32
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(windows[2, :, 1], radius, mode="edge")
    np.testing.assert_allclose(b[2, :, 1], np.convolve(padded, kernel, mode="valid"), rtol=1e-5)
    # Blurring smooths: less variation from row to row, same overall level.
    assert np.abs(np.diff(b, axis=1)).mean() < np.abs(np.diff(windows, axis=1)).mean()
    np.testing.assert_allclose(b.mean(axis=1), windows.mean(axis=1), atol=0.3)


def test_blur_keeps_a_constant_window():
    flat = np.full((2, 10, 3), 4.0, dtype="float32")
    np.testing.assert_allclose(gaussian_blur(flat, sigma=3.0), flat, rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (3,), (12, 3), (6, 12, 3)])
def test_custom_baselines_broadcast(windows, shape):
    baseline = np.arange(int(np.prod(shape)), dtype="float32").reshape(shape) / 10
    b = resolve_baseline(baseline, windows)
    assert b.shape == windows.shape
    np.testing.assert_array_equal(b, np.broadcast_to(baseline, windows.shape))


def test_custom_baseline_is_used_by_ig(lstm, windows):
    r = integrated_gradients(lstm, windows, 0.5, steps=8)
    np.testing.assert_array_equal(r.baseline, np.full(windows.shape, 0.5, dtype="float32"))


def test_baseline_equal_to_input_gives_zero_attribution(lstm, windows):
    r = integrated_gradients(lstm, windows, windows, steps=8)
    assert not r.attributions.any()
    np.testing.assert_allclose(r.forecast, r.baseline_forecast)


def test_bad_baselines_are_named(windows):
    with pytest.raises(ConfigError, match="'mean'"):
        resolve_baseline("mean", windows)
    with pytest.raises(ConfigError, match=r"\(5,\)"):
        resolve_baseline(np.zeros(5), windows)
    with pytest.raises(ConfigError, match="blur_sigma"):
        resolve_baseline("blur", windows, blur_sigma=0)
