"""Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
Networks") for forecasters that map scaled windows [n, lookback, features] to [n, horizon].

For one window x, baseline b and forecast step k, the attribution of input cell i is

    IG_i(x) = (x_i - b_i) * integral_0^1  d f_k(b + alpha * (x - b)) / d x_i  d alpha,

and completeness says the attributions sum to f_k(x) - f_k(b). The code below follows that
line by line: path points, gradients in bounded batches, quadrature weights, sum, times
(x - b), then the completeness check. Gradients come from the active Keras backend.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import closing
from dataclasses import dataclass
from functools import partial

import numpy as np

from deepcast import _backend, _progress
from deepcast.errors import ConfigError
from deepcast.explain.baselines import resolve_baseline
from deepcast.explain.methods import Attribution, Method, register
from deepcast.explain.quadrature import alphas_and_weights

log = logging.getLogger(__name__)

#: Relative completeness gap above which we warn that the integral is too coarse.
GAP_WARNING = 0.01
#: Denominator floor of the relative gap, in the model's (scaled) output units.
GAP_EPS = 1e-6


@dataclass(frozen=True)
class IGResult:
    """What `integrated_gradients` computed; shapes use n windows, L lags, F features."""

    attributions: np.ndarray  # [n, L, F], float64
    inputs: np.ndarray  # [n, L, F], the scaled windows explained
    baseline: np.ndarray  # [n, L, F]
    forecast: np.ndarray  # [n], f_k(x)
    baseline_forecast: np.ndarray  # [n], f_k(b)
    completeness_delta: np.ndarray  # [n], sum(attributions) - (f_k(x) - f_k(b))
    relative_gap: float  # median over windows of |delta| / max(|f_k(x) - f_k(b)|, GAP_EPS)
    output_index: int  # k, 0-based forecast step
    steps: int
    method: str


def integrated_gradients(
    model,
    inputs: np.ndarray,
    baseline: str | float | np.ndarray = "zeros",
    steps: int = 64,
    method: str = "gausslegendre",
    output_index: int = 0,
    batch_size: int = 1024,
    blur_sigma: float | None = None,
    verbose: bool | None = None,
) -> IGResult:
    """Attribute forecast step `output_index` of `model` to every (lag, feature) input cell.

    `baseline` is "zeros" (the training mean in scaled space), "blur" (each window blurred
    along time, see `baselines.py`) or an array broadcastable to `inputs`. At most
    `batch_size` path points are in gradient calls at once, so memory stays bounded for any
    number of windows (~0.3 MB per point for a 2 x 64 LSTM with lookback 48).

    >>> r = integrated_gradients(model, windows, baseline="zeros", steps=64)
    >>> r.attributions.shape, r.relative_gap  # ((n, L, F), 0.0012)
    """
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise ConfigError(f"inputs must be windows [n, lookback, features]. Received: {x.shape}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer. Received: {batch_size}")
    horizon = getattr(model, "output_shape", (None,))[-1]  # unknown for subclassed models
    if horizon is not None and not 0 <= output_index < horizon:
        raise ConfigError(
            f"output_index must be in 0..{horizon - 1} for a model with {horizon} outputs. "
            f"Received: output_index={output_index}"
        )
    b = resolve_baseline(baseline, x, blur_sigma)  # [n, L, F]
    alphas, weights = alphas_and_weights(steps, method)  # [S], [S]
    n = len(x)

    # Path integral of the gradient, sum_s weights[s] * grad f(b + alphas[s] * (x - b)).
    # Path point r belongs to window r // S at step r % S. Points are built one chunk at a
    # time and the backend keeps only a few chunks in flight, together `batch_size` points.
    diff = x - b  # [n, L, F]
    rows = _backend.rows_per_call(batch_size, model)  # points per gradient call
    starts = range(0, n * steps, rows)

    def indices(start: int) -> tuple[np.ndarray, np.ndarray]:  # window and step of each point
        return np.divmod(np.arange(start, min(start + rows, n * steps)), steps)

    def path_points():
        for start in starts:
            window, step = indices(start)
            yield b[window] + alphas[step, None, None] * diff[window]  # [R, L, F]

    integral = np.zeros(x.shape, dtype=np.float64)  # [n, L, F]
    gradients = partial(_backend.input_gradients, model, output_index=output_index)
    with (
        closing(_backend.map_batches(gradients, path_points())) as results,
        _progress.bar(len(starts), "integrated gradients", unit="batch", verbose=verbose) as bar,
    ):
        for (_, grads), start in zip(results, starts):  # grads [R, L, F]
            window, step = indices(start)
            _sum_per_window(integral, window, weights[step, None, None] * grads)
            bar.update(1)

    attributions = integral * diff  # [n, L, F]

    # Completeness: the attributions of a window should add up to f(x) - f(b).
    column = partial(_backend.outputs, model, output_index=output_index)
    ends = np.concatenate([x, b])  # [2n, L, F]: both ends of every path, in one pass
    batches = (ends[i : i + rows] for i in range(0, 2 * n, rows))
    f_ends = np.concatenate(list(_backend.map_batches(column, batches))).astype(np.float64)
    forecast, baseline_forecast = f_ends[:n], f_ends[n:]  # [n], [n]
    change = forecast - baseline_forecast
    delta = attributions.sum(axis=(1, 2)) - change  # [n]
    # Per window |delta| / |f(x) - f(b)|, floored so a window the model barely moves from its
    # baseline cannot divide by ~0; the median keeps a few such windows from dominating.
    gap = float(np.median(np.abs(delta) / np.maximum(np.abs(change), GAP_EPS)))
    if gap > GAP_WARNING:
        warnings.warn(
            f"Integrated Gradients: attributions miss f(x) - f(baseline) by {gap:.1%} "
            f"(median over windows) with steps={steps}; use more steps for a finer integral.",
            stacklevel=2,
        )
    log.debug("IG on %d windows, %d steps (%s): relative gap %.2e", n, steps, method, gap)
    return IGResult(
        attributions=attributions,
        inputs=x,
        baseline=b,
        forecast=forecast,
        baseline_forecast=baseline_forecast,
        completeness_delta=delta,
        relative_gap=gap,
        output_index=output_index,
        steps=steps,
        method=method,
    )


def _sum_per_window(total: np.ndarray, window: np.ndarray, values: np.ndarray) -> None:
    """total[window[r]] += values[r], for `window` sorted ascending (runs of equal windows)."""
    starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
    total[window[starts]] += np.add.reduceat(values, starts, axis=0)


@register
class IntegratedGradients(Method):
    """`integrated_gradients` in the method registry; `diagnostics` carries completeness."""

    name = "integrated_gradients"
    title = "Integrated Gradients"
    options = {"steps": 64, "quadrature": "gausslegendre", "blur_sigma": None}

    def attribute(self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"):
        result = integrated_gradients(
            self.model,
            inputs,
            baseline=baseline,
            steps=self.config["steps"],
            method=self.config["quadrature"],
            output_index=output_index,
            batch_size=self.batch_size,
            blur_sigma=self.config["blur_sigma"],
            verbose=self.verbose,
        )
        return Attribution(
            result.attributions,
            baseline=result.baseline,
            forecast=result.forecast,
            diagnostics={
                "completeness_delta": result.completeness_delta,
                "relative_gap": result.relative_gap,
                "quadrature": result.method,
                "steps": result.steps,
            },
        )
