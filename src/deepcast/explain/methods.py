"""The attribution-method registry: one class per method, one verb, one file per method.

A method is a `Method` subclass declaring its `name`, `title`, `options` (name -> default)
and capabilities; `attribute(inputs, output_index, baseline)` maps windows [n, rows, F] to
an `Attribution` of the same shape. Nothing in a method assumes rows == lookback: it explains
whatever windows it is given (`Forecaster.explain` keeps the lookback rows afterwards).

>>> from deepcast.explain import methods
>>> methods.names()
['integrated_gradients', 'saliency', 'gradient_x_input', 'smoothgrad', 'occlusion', 'shap', ...]
>>> e = methods.explain(model, windows, "occlusion", feature_names=["y", "x1", "x2"])
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np

from deepcast import _backend
from deepcast.errors import ConfigError

REGISTRY: dict[str, type[Method]] = {}

#: Other spellings people use for a method, -> its registered name.
ALIASES = {
    "ig": "integrated_gradients",
    "integrated-gradients": "integrated_gradients",
    "gradient-x-input": "gradient_x_input",
    "input_x_gradient": "gradient_x_input",
    "gxi": "gradient_x_input",
    "smooth_grad": "smoothgrad",
    "expected_gradients": "shap",
}


@dataclass(frozen=True)
class Attribution:
    """What a method computed: values [n, rows, F], the baseline it compared with [n, rows,
    F] (None: no baseline of its own) and its own diagnostics."""

    values: np.ndarray
    baseline: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)
    forecast: np.ndarray | None = None  # [n] f_k(x), when the method computed it anyway


class Method:
    """Base of every attribution method: `Method(model, **options).attribute(inputs, ...)`.

    Subclass attributes:
        name: the registry name (`"occlusion"`).
        title: the method for people, in figure titles.
        options: the method's own options and their defaults.
        feature_axis: False when the method weighs lags only (attention).
        needs_spec: True when it reads the model family's spec (attention).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    options: ClassVar[dict] = {}
    feature_axis: ClassVar[bool] = True
    needs_spec: ClassVar[bool] = False

    def __init__(self, model, spec=None, batch_size: int = 1024, verbose=None, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise ConfigError(f"{self.name} has no option {unknown[0]!r}; its options: {valid}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer. Received: {batch_size}")
        self.model, self.spec, self.batch_size, self.verbose = model, spec, batch_size, verbose
        self.config = {**self.options, **options}

    @classmethod
    def unsupported(cls, spec) -> str | None:
        """Why the method cannot explain models of `spec`, or None when it can."""
        return None

    def attribute(
        self, inputs: np.ndarray, output_index: int = 0, baseline="zeros"
    ) -> Attribution:  # pragma: no cover - every method overrides it
        raise NotImplementedError


def register(method: type[Method]) -> type[Method]:
    """Add a method under its `name` (a class decorator); a name is taken once."""
    if REGISTRY.get(method.name, method) is not method:
        raise ConfigError(f"explanation method {method.name!r} is already registered")
    REGISTRY[method.name] = method
    return method


def names() -> list[str]:
    return list(REGISTRY)


def resolve(name: str) -> type[Method]:
    """The method registered as `name` (or an alias: "ig", "integrated-gradients", ...)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in REGISTRY:
        raise ConfigError(f"unknown explanation method {name!r}; available: {', '.join(names())}")
    return REGISTRY[key]


def explain(
    model,
    inputs: np.ndarray,
    method: str = "integrated_gradients",
    *,
    feature_names: Sequence[str] | None = None,
    output_index: int = 0,
    baseline="zeros",
    spec=None,
    batch_size: int = 1024,
    verbose: bool | None = None,
    **options,
):
    """Explain forecast step `output_index` of `model` on `inputs` with `method`.

    `spec` is the model family (`deepcast.models`), needed by methods that read it
    (attention). Returns an `Explanation`; `diagnostics["seconds"]` is the method's time.

    >>> e = explain(model, windows, "saliency", feature_names=["y", "x1", "x2"])
    """
    from deepcast.explain.explanation import Explanation, _names

    cls = resolve(method)
    x = check_inputs(inputs)
    if cls.needs_spec or spec is not None:
        reason = cls.unsupported(spec)
        if reason:
            raise ConfigError(reason)
    check_output_index(model, output_index)
    started = time.perf_counter()
    instance = cls(model, spec=spec, batch_size=batch_size, verbose=verbose, **options)
    result = instance.attribute(x, output_index=output_index, baseline=baseline)
    seconds = time.perf_counter() - started
    b = result.baseline
    reference = b if b is not None else np.zeros_like(x)
    forecast = result.forecast
    if forecast is None:
        forecast = forecasts(model, x, output_index, batch_size)  # [n]
    baseline_forecast = None if b is None else forecasts(model, b, output_index, batch_size)
    return Explanation(
        values=result.values,
        inputs=x,
        feature_names=_names(feature_names, x.shape[2]),
        lags=np.arange(x.shape[1], 0, -1),
        horizon_step=output_index + 1,
        forecast=forecast,
        method=cls.name,
        baseline=reference,
        baseline_forecast=baseline_forecast,
        diagnostics={**result.diagnostics, "seconds": seconds},
        feature_axis=cls.feature_axis,
        title=cls.title,
    )


# Shared machinery of the methods: checked inputs, bounded batches of gradients and outputs.


def check_inputs(inputs: np.ndarray) -> np.ndarray:
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise ConfigError(f"inputs must be windows [n, rows, features]. Received: {x.shape}")
    return x


def check_output_index(model, output_index: int) -> None:
    horizon = getattr(model, "output_shape", (None,))[-1]  # unknown for subclassed models
    if horizon is not None and not 0 <= output_index < horizon:
        raise ConfigError(
            f"output_index must be in 0..{horizon - 1} for a model with {horizon} outputs. "
            f"Received: output_index={output_index}"
        )


def gradients(
    model, points: Iterator[np.ndarray], output_index: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(f_k(points), d f_k / d points) for each batch of points, in order."""
    column = partial(_backend.input_gradients, model, output_index=output_index)
    return _backend.map_batches(column, points)


def forecasts(model, x: np.ndarray, output_index: int, batch_size: int = 1024) -> np.ndarray:
    """f_k(x) [n] in batches, float64."""
    rows = _backend.rows_per_call(batch_size)  # forward only: no gates kept, bigger calls win
    column = partial(_backend.outputs, model, output_index=output_index)
    batches = (x[i : i + rows] for i in range(0, len(x), rows))
    parts = list(_backend.map_batches(column, batches))
    return np.concatenate(parts).astype(np.float64)


def gradient_map(
    model, x: np.ndarray, output_index: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """f_k(x) [n] and d f_k / d x [n, rows, F] for every window, float64, at most
    `batch_size` windows in flight; a few windows are still split over every worker."""
    workers = _backend.concurrent_batches()
    rows = max(1, min(_backend.rows_per_call(batch_size, model), -(-len(x) // workers)))
    starts = range(0, len(x), rows)
    forecast = np.empty(len(x), dtype=np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    batches = (x[s : s + rows] for s in starts)
    for (y, grads), s in zip(gradients(model, batches, output_index), starts):
        forecast[s : s + len(y)], out[s : s + len(grads)] = y, grads
    return forecast, out


def sum_per_window(total: np.ndarray, window: np.ndarray, values: np.ndarray) -> None:
    """total[window[r]] += values[r], for `window` sorted ascending (runs of equal windows)."""
    starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
    total[window[starts]] += np.add.reduceat(values, starts, axis=0)
