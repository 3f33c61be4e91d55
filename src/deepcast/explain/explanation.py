"""`Explanation`: attributions of forecasts to (lag, feature) cells, with their summaries.

Rows of a window run oldest to newest, so row j has lag L - j: `lags[j]` is the lag of row j
and lag 1 is the newest row, one step before the first forecast step. Every per-lag table
keeps that window order (lag L first, lag 1 last).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError
from deepcast.explain import aggregation
from deepcast.explain.integrated_gradients import IGResult
from deepcast.explain.plots import heatmap_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Explanation:
    """Attributions for n forecasts of one horizon step, in the model's scaled input space.

    >>> e = Explanation.from_ig(integrated_gradients(model, windows), ["x1", "x2", "y"])
    >>> e.by_lag().loc[1]          # importance of the newest row
    >>> e.for_window(0)            # signed attributions of the first forecast, lag x feature
    """

    values: np.ndarray  # [n, L, F] attributions
    inputs: np.ndarray  # [n, L, F] scaled windows explained
    baseline: np.ndarray  # [n, L, F]
    feature_names: list[str]  # [F]
    lags: np.ndarray  # [L]: L, L-1, ..., 1
    completeness_delta: np.ndarray  # [n]: sum of a window's attributions - (f(x) - f(b))
    relative_gap: float  # median |delta| / |f(x) - f(b)| over windows (see integrated_gradients)
    horizon_step: int  # 1-based: 1 is the first forecast step
    forecast: np.ndarray  # [n]: f(x), scaled
    baseline_forecast: np.ndarray  # [n]: f(baseline), scaled
    method: str = "integrated_gradients"
    quadrature: str = "gausslegendre"
    steps: int = 64

    @classmethod
    def from_ig(cls, result: IGResult, feature_names: Sequence[str] | None = None) -> Explanation:
        """Wrap an `IGResult`; features are named f0, f1, ... unless `feature_names` says."""
        n_lags, n_features = result.attributions.shape[1:]
        names = list(feature_names) if feature_names is not None else None
        if names is None:
            names = [f"f{i}" for i in range(n_features)]
        if len(names) != n_features:
            raise ConfigError(f"{len(names)} feature names for {n_features} features: {names}")
        return cls(
            values=result.attributions,
            inputs=result.inputs,
            baseline=result.baseline,
            feature_names=names,
            lags=np.arange(n_lags, 0, -1),
            completeness_delta=result.completeness_delta,
            relative_gap=result.relative_gap,
            horizon_step=result.output_index + 1,
            forecast=result.forecast,
            baseline_forecast=result.baseline_forecast,
            quadrature=result.method,
            steps=result.steps,
        )

    # Summaries: mean |attribution| (see aggregation.py), labelled for people.

    def by_cell(self) -> pd.DataFrame:
        """Mean |attribution| per cell: index lag (L..1), columns features."""
        return self._lag_frame(aggregation.by_cell(self.values))

    def by_lag(self) -> pd.Series:
        """Mean |attribution| per lag, over windows and features; index lag (L..1)."""
        return pd.Series(
            aggregation.by_lag(self.values), index=self._lag_index(), name="importance"
        )

    def by_feature(self) -> pd.Series:
        """Mean |attribution| per feature, over windows and lags."""
        index = pd.Index(self.feature_names, name="feature")
        return pd.Series(aggregation.by_feature(self.values), index=index, name="importance")

    def for_window(self, i: int) -> pd.DataFrame:
        """Signed attributions of forecast i: index lag (L..1), columns features."""
        return self._lag_frame(self.values[i])

    def top_cells(self, k: int = 10) -> pd.DataFrame:
        """The k most important cells, most important first: columns feature, lag, importance."""
        rows, cols, importance = aggregation.top_cells(self.values, k)
        return pd.DataFrame(
            {
                "feature": [self.feature_names[c] for c in cols],
                "lag": self.lags[rows],
                "importance": importance,
            }
        )

    def to_dict(self) -> dict:
        """Per-cell, per-lag and per-feature importances and the completeness gap; JSON-safe."""
        cells = aggregation.by_cell(self.values)  # [L, F]
        return {
            "method": self.method,
            "quadrature": self.quadrature,
            "steps": int(self.steps),
            "horizon_step": int(self.horizon_step),
            "n_windows": int(len(self.values)),
            "features": list(self.feature_names),
            "lags": [int(lag) for lag in self.lags],
            "by_cell": [
                {"feature": name, "lag": int(lag), "importance": float(cells[j, f])}
                for j, lag in enumerate(self.lags)
                for f, name in enumerate(self.feature_names)
            ],
            "by_lag": [
                {"lag": int(lag), "importance": float(v)}
                for lag, v in zip(self.lags, aggregation.by_lag(self.values))
            ],
            "by_feature": {
                name: float(v)
                for name, v in zip(self.feature_names, aggregation.by_feature(self.values))
            },
            "completeness": {
                "relative_gap_median": float(self.relative_gap),
                "abs_delta_mean": float(np.abs(self.completeness_delta).mean()),
                "abs_delta_max": float(np.abs(self.completeness_delta).max()),
            },
        }

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string (what `attributions.json` holds)."""
        return json.dumps(self.to_dict(), indent=indent)

    def plot(self, truth_cells: Sequence[tuple[str | int, int]] | None = None) -> Figure:
        """Lag x feature heatmap of mean |attribution|; see `plots.heatmap_figure`."""
        return heatmap_figure(self, truth_cells=truth_cells)

    def _lag_index(self) -> pd.Index:
        return pd.Index(self.lags, name="lag")

    def _lag_frame(self, cells: np.ndarray) -> pd.DataFrame:
        columns = pd.Index(self.feature_names, name="feature")
        return pd.DataFrame(cells, index=self._lag_index(), columns=columns)
