"""`Explanation`: attributions of forecasts to (lag, feature) cells, with their summaries.

One class for every method (`explain/methods.py`): what all methods share are fields, what
one method alone has (IG's completeness, SHAP's expected value, ...) is in `diagnostics`.

Rows of a window run oldest to newest, so row j has lag L - j: `lags[j]` is the lag of row j
and lag 1 is the newest row, one step before the first forecast step. Every per-lag table
keeps that window order (lag L first, lag 1 last).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deepcast._jsonable import plain
from deepcast.errors import ConfigError
from deepcast.explain import aggregation
from deepcast.explain.plots import heatmap_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Label of the feature column of a method that weighs lags only (attention).
ALL_FEATURES = "(all features)"


@dataclass(frozen=True)
class Explanation:
    """Attributions for n forecasts of one horizon step, in the model's scaled input space.

    `baseline` is the reference the method compared with (IG's path start, occlusion's fill
    value), or the training mean (zeros) for methods without one; deletion checks use it.
    `feature_axis` is False for a method that weighs lags only (attention): every feature of
    a lag then holds the lag's weight, and `by_feature()` refuses.

    >>> e = Explanation.from_ig(integrated_gradients(model, windows), ["x1", "x2", "y"])
    >>> e.by_lag().loc[1]          # importance of the newest row
    >>> e.for_window(0)            # signed attributions of the first forecast, lag x feature
    >>> e.diagnostics["relative_gap"]
    """

    values: np.ndarray  # [n, L, F] attributions
    inputs: np.ndarray  # [n, L, F] scaled windows explained
    feature_names: list[str]  # [F]
    lags: np.ndarray  # [L]: L, L-1, ..., 1
    horizon_step: int  # 1-based: 1 is the first forecast step
    forecast: np.ndarray  # [n]: f(x), scaled
    method: str = "integrated_gradients"
    baseline: np.ndarray | None = None  # [n, L, F]
    baseline_forecast: np.ndarray | None = None  # [n]: f(baseline), scaled
    diagnostics: dict = field(default_factory=dict)  # per method, JSON-safe values or arrays
    feature_axis: bool = True
    title: str = ""  # the method for people: "Integrated Gradients"

    @classmethod
    def from_ig(cls, result, feature_names: Sequence[str] | None = None) -> Explanation:
        """Wrap the `IGResult` of `integrated_gradients(...)` (not imported here: that module
        builds Explanations through the method registry); features are named f0, f1, ...
        unless `feature_names` says."""
        n_lags, n_features = result.attributions.shape[1:]
        return cls(
            values=result.attributions,
            inputs=result.inputs,
            feature_names=_names(feature_names, n_features),
            lags=np.arange(n_lags, 0, -1),
            horizon_step=result.output_index + 1,
            forecast=result.forecast,
            method="integrated_gradients",
            baseline=result.baseline,
            baseline_forecast=result.baseline_forecast,
            diagnostics={
                "completeness_delta": result.completeness_delta,
                "relative_gap": result.relative_gap,
                "quadrature": result.method,
                "steps": result.steps,
            },
            title="Integrated Gradients",
        )

    # IG's fields from before explanations became method-neutral, read from `diagnostics`.

    @property
    def completeness_delta(self) -> np.ndarray:
        """[n]: sum of a window's attributions - (f(x) - f(b)); Integrated Gradients only."""
        return self._diagnostic("completeness_delta")

    @property
    def relative_gap(self) -> float:
        """Median |delta| / |f(x) - f(b)| over windows; Integrated Gradients only."""
        return self._diagnostic("relative_gap")

    @property
    def quadrature(self) -> str:
        return self._diagnostic("quadrature")

    @property
    def steps(self) -> int:
        return self._diagnostic("steps")

    def first_rows(self, rows: int) -> Explanation:
        """The explanation of the first `rows` window rows only (the lookback rows of a window
        that also carries known-future rows), lags renumbered so the last kept row is lag 1."""
        if rows >= self.values.shape[1]:
            return self
        cut = slice(0, rows)
        return replace(
            self,
            values=self.values[:, cut],
            inputs=self.inputs[:, cut],
            baseline=None if self.baseline is None else self.baseline[:, cut],
            lags=np.arange(rows, 0, -1),
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
        if not self.feature_axis:
            raise ConfigError(f"{self.method} weighs lags only, not features: use by_lag()")
        index = pd.Index(self.feature_names, name="feature")
        return pd.Series(aggregation.by_feature(self.values), index=index, name="importance")

    def for_window(self, i: int) -> pd.DataFrame:
        """Signed attributions of forecast i: index lag (L..1), columns features."""
        return self._lag_frame(self.values[i])

    def top_cells(self, k: int = 10) -> pd.DataFrame:
        """The k most important cells, most important first: columns feature, lag, importance.

        Without a feature axis these are the k most important lags, feature `ALL_FEATURES`.
        """
        if not self.feature_axis:
            lags = self.by_lag().sort_values(ascending=False, kind="stable").iloc[:k]
            return pd.DataFrame(
                {"feature": ALL_FEATURES, "lag": lags.index.to_numpy(), "importance": lags.values}
            )
        rows, cols, importance = aggregation.top_cells(self.values, k)
        return pd.DataFrame(
            {
                "feature": [self.feature_names[c] for c in cols],
                "lag": self.lags[rows],
                "importance": importance,
            }
        )

    def to_dict(self) -> dict:
        """Per-cell, per-lag and per-feature importances and what the method reports; JSON-safe.

        Integrated Gradients adds `quadrature`, `steps` and `completeness`; other methods put
        their scalar diagnostics under `diagnostics`.
        """
        cells = aggregation.by_cell(self.values)  # [L, F]
        out: dict = {
            "method": self.method,
            "horizon_step": int(self.horizon_step),
            "n_windows": int(len(self.values)),
            "features": list(self.feature_names),
            "feature_axis": bool(self.feature_axis),
            "lags": [int(lag) for lag in self.lags],
        }
        if self.feature_axis:
            out["by_cell"] = [
                {"feature": name, "lag": int(lag), "importance": float(cells[j, f])}
                for j, lag in enumerate(self.lags)
                for f, name in enumerate(self.feature_names)
            ]
        out["by_lag"] = [
            {"lag": int(lag), "importance": float(v)}
            for lag, v in zip(self.lags, aggregation.by_lag(self.values))
        ]
        if self.feature_axis:
            out["by_feature"] = {
                name: float(v)
                for name, v in zip(self.feature_names, aggregation.by_feature(self.values))
            }
        if self.method == "integrated_gradients" and "completeness_delta" in self.diagnostics:
            delta = np.abs(self.completeness_delta)
            out["quadrature"] = self.quadrature
            out["steps"] = int(self.steps)
            out["completeness"] = {
                "relative_gap_median": float(self.relative_gap),
                "abs_delta_mean": float(delta.mean()),
                "abs_delta_max": float(delta.max()),
            }
        else:
            scalars = {k: plain(v) for k, v in self.diagnostics.items() if np.ndim(v) == 0}
            if scalars:
                out["diagnostics"] = scalars
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string (what `attributions.json` holds)."""
        return json.dumps(self.to_dict(), indent=indent)

    def plot(self, truth_cells: Sequence[tuple[str | int, int]] | None = None) -> Figure:
        """Lag x feature heatmap of mean |attribution| (lags only without a feature axis),
        titled by method; see `plots.heatmap_figure`."""
        return heatmap_figure(self, truth_cells=truth_cells)

    def _diagnostic(self, name: str):
        if name not in self.diagnostics:
            raise AttributeError(f"a {self.method} explanation has no {name!r}")
        return self.diagnostics[name]

    def _lag_index(self) -> pd.Index:
        return pd.Index(self.lags, name="lag")

    def _lag_frame(self, cells: np.ndarray) -> pd.DataFrame:
        columns = pd.Index(self.feature_names, name="feature")
        return pd.DataFrame(cells, index=self._lag_index(), columns=columns)


def _names(feature_names: Sequence[str] | None, n_features: int) -> list[str]:
    names = list(feature_names) if feature_names is not None else None
    if names is None:
        names = [f"f{i}" for i in range(n_features)]
    if len(names) != n_features:
        raise ConfigError(f"{len(names)} feature names for {n_features} features: {names}")
    return names
