"""Figures of an `Explanation`: plain `matplotlib.figure.Figure`s, no pyplot and no GUI
backend, so they work in servers and tests; saving is the caller's job (`fig.savefig`).

`explanation.py` imports this module (for `Explanation.plot`), never the other way round:
the figures take anything with the fields of `Attributions`, which an `Explanation` has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from deepcast.explain import aggregation


class Attributions(Protocol):
    """The fields of an `Explanation` that the figures read."""

    @property
    def values(self) -> np.ndarray: ...  # [n, L, F] attributions

    @property
    def inputs(self) -> np.ndarray: ...  # [n, L, F] scaled windows

    @property
    def feature_names(self) -> list[str]: ...  # [F]

    @property
    def lags(self) -> np.ndarray: ...  # [L]: L, L-1, ..., 1

    @property
    def horizon_step(self) -> int: ...  # 1-based

    @property
    def forecast(self) -> np.ndarray: ...  # [n], scaled

    @property
    def baseline_forecast(self) -> np.ndarray | None: ...  # [n], scaled; None: no baseline

    @property
    def method(self) -> str: ...

    @property
    def title(self) -> str: ...  # the method for people

    @property
    def feature_axis(self) -> bool: ...  # False: lags only (attention)


def heatmap_figure(
    explanation: Attributions, truth_cells: Sequence[tuple[str | int, int]] | None = None
) -> Figure:
    """Lag x feature heatmap of mean |attribution|, newest lag on the right, titled by method.

    `truth_cells` lists known drivers as (feature name or index, lag); each gets a box, so a
    synthetic series' planted ground truth can be checked by eye. A method without a feature
    axis (attention) gets one row, "all features".

    >>> heatmap_figure(e, truth_cells=[("x1", 3)]).savefig("attributions.png")
    """
    e = explanation
    cells = aggregation.by_cell(e.values).T  # [L, F] -> [F, L]: features down, lags across
    names = list(e.feature_names)
    if not _has_features(e):
        cells, names = cells[:1], ["all features"]
    n_features, n_lags = cells.shape
    fig = Figure(
        figsize=(max(6.0, 0.16 * n_lags + 2.5), max(2.5, 0.45 * n_features + 1.5)),
        layout="constrained",
    )
    ax = fig.add_subplot()
    # Columns are in window order (lag L ... lag 1), so the newest lag lands on the right.
    image = ax.imshow(cells, aspect="auto", cmap="viridis", interpolation="nearest")
    _lag_axis(ax, e.lags)
    ax.set_yticks(range(n_features), names)
    ax.set_ylabel("feature")
    fig.colorbar(image, ax=ax, label="mean |attribution|")
    ax.set_title(
        f"{_title(e)}, forecast step {e.horizon_step}: "
        f"mean |attribution| over {len(e.values)} windows"
    )
    if truth_cells:
        for feature, lag in truth_cells:
            if not _has_features(e):
                row = 0
            elif isinstance(feature, str):
                row = e.feature_names.index(feature)
            else:
                row = int(feature)
            col = int(np.flatnonzero(e.lags == lag)[0])
            box = Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=2)
            ax.add_patch(box)
        ax.plot([], [], "s", mfc="none", mec="red", label="planted truth")
        ax.legend(loc="upper left", fontsize="small")
    return fig


def window_figure(explanation: Attributions, i: int) -> Figure:
    """One forecast: each feature's scaled input as a line over its signed attributions.

    Red cells pushed the forecast up, blue ones down (relative to the baseline); the colour
    scale is symmetric around zero and shared by all features.

    >>> window_figure(e, 0).savefig("window_0.png")
    """
    e = explanation
    signed = e.values[i].T  # [L, F] -> [F, L]
    n_features, n_lags = signed.shape
    limit = float(np.abs(signed).max()) or 1.0
    norm = Normalize(vmin=-limit, vmax=limit)  # symmetric, so white is exactly zero
    fig = Figure(
        figsize=(max(6.0, 0.12 * n_lags + 3.0), 1.6 * n_features + 1.2), layout="constrained"
    )
    axes = fig.subplots(n_features, 1, sharex=True, squeeze=False)[:, 0]
    for f, ax in enumerate(axes):
        series = e.inputs[i, :, f]
        low, high = float(series.min()), float(series.max())
        pad = 0.1 * (high - low) or 0.5
        # The attribution strip fills the panel behind the line, one column per lag.
        image = ax.imshow(
            signed[f : f + 1],
            aspect="auto",
            cmap="RdBu_r",
            norm=norm,
            extent=(-0.5, n_lags - 0.5, low - pad, high + pad),
            interpolation="nearest",
        )
        ax.plot(np.arange(n_lags), series, color="black", lw=1.2)
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel(e.feature_names[f])
    _lag_axis(axes[-1], e.lags)
    fig.colorbar(image, ax=list(axes), label="attribution (signed)")
    reference = getattr(e, "baseline_forecast", None)
    versus = f"baseline {reference[i]:.3f}, " if reference is not None else ""
    fig.suptitle(
        f"{_title(e)}, window {i}: forecast step {e.horizon_step} = {e.forecast[i]:.3f} "
        f"({versus}scaled units)"
    )
    return fig


def _title(e) -> str:
    return getattr(e, "title", "") or str(getattr(e, "method", "Integrated Gradients"))


def _has_features(e) -> bool:
    return bool(getattr(e, "feature_axis", True))


def _lag_axis(ax, lags: np.ndarray) -> None:
    """Label columns by lag, always including lag 1 (the newest row, rightmost)."""
    n = len(lags)
    stride = max(1, int(np.ceil(n / 12)))
    ticks = np.arange(n - 1, -1, -stride)[::-1]  # counted back from the newest column
    ax.set_xticks(ticks, [str(lags[t]) for t in ticks])
    ax.set_xlabel("lag (rows before the forecast; newest on the right)")
