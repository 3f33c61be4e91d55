"""One loaded, warmed-up model version and its fast forecast path.

The fast path prepares the rows as the training rows were (the forecaster's recorded
preparation and encoder), keeps the newest `lookback` of them, scales them and calls the
Keras model directly on that one window: no `Model.predict`, whose per-call set-up costs
more than the forecast itself. Intervals, when asked, come from the forecaster's own
interval methods on the same window.

>>> served = ServedModel.load("demand", "3", store.path("demand", "3"))
>>> served.forecast(records, levels=[80])["forecast"][0]
{'step': 1, 'timestamp': '...', 'value': 3812.4, 'lo_80': 3650.1, 'hi_80': 3970.2}
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deepcast import _backend
from deepcast.errors import DataError
from deepcast.forecaster import Forecaster
from deepcast.persistence import read_manifest
from deepcast.serving.batching import Batcher
from deepcast.uncertainty import intervals

logger = logging.getLogger(__name__)


class ServedModel:
    """A forecaster loaded from the store as `name` version `version`, ready for traffic."""

    def __init__(self, name: str, version: str, forecaster: Forecaster, manifest: dict):
        self.name = name
        self.version = version
        self.forecaster = forecaster
        self.manifest = manifest
        self.columns = forecaster.input_columns  # raw columns, target first
        step = forecaster.preparation_.step
        self.step = None if step is None else pd.tseries.frequencies.to_offset(step)
        self._call = _model_call(forecaster.model_)
        self._batched = Batcher(self._call)  # concurrent requests share one model call
        encoder = forecaster.encoder_
        # Records of plain numbers at the model's step skip pandas (see `_fast_window`).
        self._fast = not encoder.categories and not encoder.calendar
        self._time_keys = [k for k in (forecaster.preparation_.time_col, "timestamp") if k]
        self._tz = forecaster.preparation_.tz
        resample = forecaster.preparation_.resample
        self._min_spacing = None if resample is None else pd.Timedelta(resample).value
        self._step_ns = _fixed_ns(self.step)  # None for a calendar step (month, ...)

    @classmethod
    def load(cls, name: str, version: str, path: Path) -> ServedModel:
        """Load version `version` of `name` and warm it up (the first call of a Keras model
        builds its graph state; it must not land on a user's request)."""
        started = time.perf_counter()
        forecaster = Forecaster.load(path)
        served = cls(name, version, forecaster, read_manifest(path) or {})
        served.warm_up()
        logger.info("loaded %s version %s in %.2fs", name, version, time.perf_counter() - started)
        return served

    def warm_up(self) -> None:
        f = self.forecaster
        rows = f.lookback + (f.horizon if f.future_columns_ is not None else 0)
        x = np.zeros((1, rows, len(f.feature_names_)), dtype=np.float32)
        for _ in range(3):
            self._call(x)

    @property
    def lookback(self) -> int:
        return self.forecaster.lookback

    # -- the forecast path -----------------------------------------------------------------
    def window(self, data) -> pd.DataFrame:
        """The newest `lookback` rows of `data` (records or a frame), prepared and validated:
        DataError naming the column and row of a bad value."""
        f = self.forecaster
        frame = f._frame(data, "observations")
        if len(frame) < f.lookback:
            raise DataError(
                f"observations: {len(frame)} rows are too few; model {self.name} needs the "
                f"newest {f.lookback} (its lookback)"
            )
        window = frame.iloc[-f.lookback :]
        if self._step_ns is not None and len(window) > 1:
            # A model reads its rows one step apart; a gap would shift every lag after it.
            spacing = np.diff(window.index.as_unit("ns").asi8)
            gaps = np.flatnonzero(spacing != self._step_ns)
            if len(gaps):
                before, after = window.index[gaps[0]], window.index[gaps[0] + 1]
                raise DataError(
                    f"observations: gap in the newest {f.lookback} rows: {after} follows "
                    f"{before} (step {self.step.freqstr}); send the missing rows (or train "
                    "with --fill)"
                )
        return window

    def _fast_window(self, data) -> tuple[pd.Timestamp, np.ndarray] | None:
        """(origin, the newest `lookback` rows [L, F]) read straight from JSON records of
        numbers, in time order, at the model's step, for a model without one-hot or calendar
        inputs. None whenever anything is unusual: `window` then prepares and validates the
        rows in full, and names what is wrong. Both give the same numbers."""
        f = self.forecaster
        if not self._fast or not isinstance(data, list) or len(data) < f.lookback:
            return None
        try:
            key = next(k for k in self._time_keys if k in data[0])
            times = pd.to_datetime([r[key] for r in data], format="ISO8601", utc=bool(self._tz))
            values = np.array([[r[c] for c in f.feature_names_] for r in data], dtype=np.float64)
        except (StopIteration, KeyError, TypeError, ValueError):
            return None
        if values.ndim != 2 or not np.isfinite(values).all():
            return None
        if times.tz is not None and self._tz is None:
            return None
        spacing = np.diff(times.asi8)
        if not (spacing > 0).all():  # unsorted or repeated timestamps: the full path decides
            return None
        if self._min_spacing is not None and spacing.min() * _ns(times) < self._min_spacing:
            return None  # finer than the model's step: resampled by the full path
        window = spacing[-(f.lookback - 1) :] * _ns(times) if f.lookback > 1 else spacing[:0]
        if self.step is not None and (self._step_ns is None or (window != self._step_ns).any()):
            return None  # a gap (or a calendar step): the full path fills it or names it
        origin = times[-1] if self._tz is None else times[-1].tz_convert(self._tz)
        return origin, values[-f.lookback :]

    def forecast(self, data, levels: list[float] | None = None) -> dict:
        """{"model", "version", "origin", "forecast": [{"step", "timestamp", "value", ...}]}
        for the window that ends at the newest row of `data`."""
        f = self.forecaster
        fast = self._fast_window(data)
        if fast is None:
            frame = self.window(data)
            # [1, L, F], or [1, L + H, F] with the forecast steps' calendar (known_future.py)
            origin, x = frame.index[-1], np.asarray(f._input_windows(frame)[-1:], np.float32)
        else:
            origin, values = fast
            x = f.scaler_.transform(values)[None].astype(np.float32)  # [1, L, F]
        levels = intervals.checked_levels(levels)
        if levels:
            method = intervals.default_method(f)
            point, bands = intervals.intervals(f, x, levels, method, seed=f.seed)
        else:
            point, bands = f.head.point(f._to_original(self._batched(x))), {}
        steps = []
        for h in range(f.horizon):
            step = {
                "step": h + 1,
                "timestamp": None if self.step is None else (origin + (h + 1) * self.step),
                "value": float(point[0, h]),
            }
            for level, (lo, hi) in bands.items():
                step[f"lo_{level}"] = float(lo[0, h])
                step[f"hi_{level}"] = float(hi[0, h])
            if step["timestamp"] is not None:
                step["timestamp"] = step["timestamp"].isoformat()
            steps.append(step)
        return {
            "model": self.name,
            "version": self.version,
            "origin": origin.isoformat(),
            "forecast": steps,
        }

    def explain(self, data, top: int = 10, full: bool = False, steps: int = 32) -> dict:
        """Integrated Gradients of the first forecast step on the newest window: the `top`
        (feature, lag) cells, and with `full` the whole (lag x feature) map."""
        f = self.forecaster
        frame = self.window(data)
        e = f.explain(frame, steps=steps, max_windows=1, verbose=False)
        out = {
            "model": self.name,
            "version": self.version,
            "origin": frame.index[-1].isoformat(),
            "method": "integrated_gradients",
            "top_cells": [
                {"feature": str(r.feature), "lag": int(r.lag), "importance": float(r.importance)}
                for r in e.top_cells(top).itertuples()
            ],
        }
        if full:
            out["features"] = list(e.feature_names)
            out["lags"] = [int(lag) for lag in e.lags]
            out["values"] = np.asarray(e.values[0], dtype=float).tolist()  # [lookback, F]
        return out


def _fixed_ns(step) -> int | None:
    """Nanoseconds of a fixed step (hour, 15 minutes, day); None for a calendar one."""
    if step is None:
        return None
    try:
        return pd.Timedelta(step).value
    except (ValueError, TypeError):
        return None


def _ns(times: pd.DatetimeIndex) -> int:
    """Nanoseconds per unit of `times.asi8` (pandas keeps s, ms, us or ns)."""
    return {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[times.unit]


def _model_call(model):
    """One window (already scaled, [1, L, F] float32) -> the model's raw output, as numpy.

    On torch the functional graph is walked with each layer's `call()` (no `Layer.__call__`
    bookkeeping, which costs more than the fused LSTM kernel on one window); this lean path is
    used only if it gives the standard call's numbers on a random window, else the standard
    call is (another backend, a model that is not functional, a layer that needs `__call__`).
    """
    if _backend.name() != "torch":
        return lambda x: _backend.predict(model, x)
    import torch

    def standard(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x), training=False).cpu().numpy()

    lean_graph = _lean(model)
    if lean_graph is None:
        return standard

    def lean(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return lean_graph(torch.from_numpy(x)).cpu().numpy()

    probe = np.random.default_rng(0).normal(size=(1, *model.input_shape[1:])).astype(np.float32)
    try:
        same = np.allclose(lean(probe), standard(probe), rtol=1e-6, atol=1e-7)
    except Exception:  # any layer that cannot run outside __call__
        same = False
    if not same:
        logger.info("lean forward differs from the model call; using the standard call")
    return lean if same else standard


def _lean(op):
    """`op` as a function calling layers' `call()` directly through functional graphs; None
    for a model that is not a plain functional one."""
    from keras.src.models.functional import Functional

    if isinstance(op, Functional):
        if len(op.inputs) != 1:
            return None

        def run(x, *args, **kwargs):
            outputs = op._run_through_graph([x], operation_fn=_lean_op)
            return (
                outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
            )

        return run
    if isinstance(op, keras.Model):  # Sequential or subclassed: no graph to walk
        return None
    return _lean_op(op)


def _lean_op(op):
    from keras.src.models.functional import Functional

    if isinstance(op, Functional):
        return _lean(op) or op
    if getattr(op, "_call_has_training_arg", False):
        return lambda *args, **kwargs: op.call(*args, **{**kwargs, "training": False})
    return op.call
