"""Baselines for Integrated Gradients: the "absence of signal" each window is compared with.

Windows are scaled with the training mean and standard deviation, so the training mean is
zero in scaled space: "zeros" asks "what does the history add over an average history?".
"blur" keeps each window's level and slow trend and removes the detail, so it asks "what
does the short-term shape add?".
"""

from __future__ import annotations

import numpy as np

from deepcast.errors import ConfigError

NAMES = ("zeros", "blur")


def resolve_baseline(
    baseline: str | float | np.ndarray, inputs: np.ndarray, blur_sigma: float | None = None
) -> np.ndarray:
    """The baseline as a float32 array of the inputs' shape [n, lookback, features].

    `baseline` is "zeros", "blur", or anything that broadcasts to the inputs (a scalar, one
    window [lookback, features], one value per feature [features], or one per window).

    >>> resolve_baseline("zeros", np.ones((2, 48, 3), np.float32)).shape
    (2, 48, 3)
    """
    if isinstance(baseline, str):
        if baseline == "zeros":
            return np.zeros_like(inputs, dtype=np.float32)
        if baseline == "blur":
            sigma = blur_sigma if blur_sigma is not None else max(1.0, inputs.shape[1] / 8)
            return gaussian_blur(inputs, sigma)
        raise ConfigError(
            f"Expected baseline to be one of {NAMES} or an array. Received: baseline={baseline!r}"
        )
    try:
        return np.broadcast_to(np.asarray(baseline, dtype=np.float32), inputs.shape).copy()
    except ValueError:
        shape = np.shape(baseline)
        raise ConfigError(
            f"baseline of shape {shape} does not broadcast to the inputs' shape {inputs.shape}"
        ) from None


def gaussian_blur(windows: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each window along time (axis 1) with a Gaussian of `sigma` rows, edges repeated.

    >>> float(np.ptp(gaussian_blur(np.ones((1, 10, 2)), sigma=2.0)))  # a constant stays put
    0.0
    """
    if sigma <= 0:
        raise ConfigError(f"blur_sigma must be positive. Received: blur_sigma={sigma}")
    radius = int(np.ceil(3 * sigma))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    # Repeating the edge rows keeps a window's level at its ends instead of pulling it to 0.
    padded = np.pad(windows, ((0, 0), (radius, radius), (0, 0)), mode="edge")  # [n, L+2r, F]
    # [n, L+2r, F] -> [n, L, F, 2r+1]: every row with its neighbours, without copying
    neighbours = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=1)
    return (neighbours @ kernel).astype(np.float32)  # [n, L, F]
