"""What a model's monitoring compares live data with, saved with the model at training time.

`DriftReference.build(train_frame, errors, period)` keeps, from the training rows, the bins
and proportions of every input column (deciles of the training values), and, from the
validation windows, the robust centre and scale of the one-step errors (actual - forecast),
the mean and sd of their standardised sizes and their memory (see ErrorBaseline). It also
fixes the input detector's window: the smallest whole number of seasonal periods that holds
at least 168 rows, so every phase of the season is equally represented in the window as in
the training rows (a window of only afternoons is not drift).

>>> import deepcast as dc, numpy as np
>>> df = dc.datasets.synthetic(n_steps=1000, seed=0)
>>> errors = np.random.default_rng(0).normal(size=300)     # validation one-step errors
>>> ref = DriftReference.build(df[["y", "x1", "x2"]], errors, period=168)  # target first
>>> ref.window, ref.columns
(168, ['y', 'x1', 'x2'])
>>> DriftReference.from_json(ref.to_json()) == ref
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError, DataError
from deepcast.monitoring.statistics import (
    bin_index,
    proportions,
    quantile_edges,
    robust_location_scale,
)

FORMAT = 1
BINS = 10
MIN_WINDOW = 168  # rows: ten bins then hold ~17 rows each on average
MIN_ERRORS = 30
# Standardised errors are clipped at +-CLIP before they enter a CUSUM: one anomalous row
# (a spike the anomaly detector is for) must not by itself look like drift.
CLIP = 4.0


@dataclass(frozen=True)
class ErrorBaseline:
    """What the error detector standardises with: the robust centre and scale of the one-step
    errors (z = (error - centre) / scale); the mean and sd of their size sqrt(min(|z|, CLIP));
    and, for each of the two, a memory factor sqrt((1 + r) / (1 - r)) from the lag-1
    autocorrelation r (clipped to 0..0.9).

    The square root makes the size of a normal error nearly symmetric (skewness 0.1, against
    1.0 for |z|): a CUSUM on a right-skewed increment alarms far more often than its threshold
    suggests. The memory factor is the long-run sd of a sum relative to the sum of
    independent rows: a model's errors keep some autocorrelation (0.24 at lag 1 for the
    benchmark's model), and sums of correlated rows wander further, so the increments are
    divided by it.
    """

    centre: float
    scale: float
    spread_centre: float
    spread_scale: float
    memory: float
    spread_memory: float
    count: int

    @classmethod
    def of(cls, errors: np.ndarray) -> ErrorBaseline:
        """From errors in time order (missing ones as NaN)."""
        errors = np.asarray(errors, dtype=np.float64)
        finite = errors[np.isfinite(errors)]
        centre, scale = robust_location_scale(finite)
        # A constant segment (e.g. a flat-lined sensor) still gets a usable, tiny scale.
        scale = max(scale, 1e-9 * max(1.0, abs(centre)))
        z = np.clip((errors - centre) / scale, -CLIP, CLIP)
        size = _size(z)
        return cls(
            centre=centre,
            scale=scale,
            spread_centre=float(np.nanmean(size)),
            spread_scale=max(float(np.nanstd(size)), 1e-6),
            memory=_memory(z),
            spread_memory=_memory(size),
            count=len(finite),
        )

    def standardise(self, errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(level, spread) increments, one per error: the clipped z, and its standardised
        size, each divided by its memory factor."""
        z = (np.asarray(errors, dtype=np.float64) - self.centre) / self.scale
        level = np.clip(z, -CLIP, CLIP) / self.memory
        spread = (_size(z) - self.spread_centre) / (self.spread_scale * self.spread_memory)
        return level, spread


def _size(z: np.ndarray) -> np.ndarray:
    return np.sqrt(np.minimum(np.abs(z), CLIP))


def _memory(values: np.ndarray) -> float:
    """sqrt((1 + r) / (1 - r)), r the lag-1 autocorrelation of `values` clipped to 0..0.9."""
    a, b = values[1:], values[:-1]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return 1.0
    r = float(np.clip(np.corrcoef(a[ok], b[ok])[0, 1], 0.0, 0.9))
    return float(np.sqrt((1 + r) / (1 - r)))


@dataclass(frozen=True)
class ColumnBins:
    """One input column's inner bin edges and its training proportions (smoothed)."""

    edges: tuple[float, ...]
    expected: tuple[float, ...]

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnBins:
        edges = quantile_edges(values, BINS)
        counts = np.bincount(bin_index(values, edges), minlength=len(edges) + 1)
        return cls(tuple(map(float, edges)), tuple(map(float, proportions(counts))))


@dataclass(frozen=True)
class DriftReference:
    """The reference of a model's drift detectors (see the module doc).

    `columns`: the input columns, target first; `period`: the longest seasonal period in
    rows; `window`: rows the input detector compares at a time; `bins`: per column;
    `errors`: the one-step error baseline; `rows`: training rows it was built from.
    """

    columns: list[str]
    period: int
    window: int
    bins: dict[str, ColumnBins]
    errors: ErrorBaseline
    rows: int

    @classmethod
    def build(cls, train_frame: pd.DataFrame, errors: np.ndarray, period: int) -> DriftReference:
        if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 1:
            raise ConfigError(f"period must be a positive integer. Received: period={period!r}")
        if not isinstance(train_frame, pd.DataFrame) or train_frame.empty:
            raise DataError(
                "train_frame must be a non-empty DataFrame of the input columns. Received: "
                f"train_frame={type(train_frame).__name__} of {len(train_frame)} rows"
            )
        errors = np.asarray(errors, dtype=np.float64).ravel()
        finite = int(np.isfinite(errors).sum())
        if finite < MIN_ERRORS:
            raise DataError(
                f"errors: {finite} finite one-step errors are too few for a reference (at "
                f"least {MIN_ERRORS}). Received: errors of shape {errors.shape}"
            )
        bins = {}
        for column in train_frame.columns:
            values = pd.to_numeric(train_frame[column], errors="coerce").to_numpy(np.float64)
            values = values[np.isfinite(values)]
            if not len(values):
                raise DataError(f"train_frame: column {column!r} has no finite value")
            bins[str(column)] = ColumnBins.of(values)
        period = int(period)
        window = period * int(np.ceil(MIN_WINDOW / period))
        columns = [str(c) for c in train_frame.columns]
        return cls(columns, period, window, bins, ErrorBaseline.of(errors), len(train_frame))

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "columns": list(self.columns),
            "period": self.period,
            "window": self.window,
            "rows": self.rows,
            "bins": {
                c: {"edges": list(b.edges), "expected": list(b.expected)}
                for c, b in self.bins.items()
            },
            "errors": asdict(self.errors),
        }

    @classmethod
    def from_json(cls, data: dict) -> DriftReference:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"a drift reference must be a dict of format {FORMAT}. Received: format={got!r}"
            )
        bins = {
            c: ColumnBins(tuple(map(float, b["edges"])), tuple(map(float, b["expected"])))
            for c, b in data["bins"].items()
        }
        e = data["errors"]
        baseline = ErrorBaseline(
            **{k: float(v) for k, v in e.items() if k != "count"}, count=int(e["count"])
        )
        return cls(
            list(data["columns"]),
            int(data["period"]),
            int(data["window"]),
            bins,
            baseline,
            int(data["rows"]),
        )
