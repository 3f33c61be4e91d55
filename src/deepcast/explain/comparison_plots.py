"""Figures across methods: one forecast's lag x feature map per method side by side, each
feature's attribution through time, and the deletion / insertion curves of `compare`.

Plain `matplotlib.figure.Figure`s, like plots.py; saving is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from deepcast.explain.plots import _has_features, _lag_axis, _title


def methods_figure(
    explanations: dict, i: int = -1, truth_cells: Sequence[tuple[str, int]] | None = None
) -> Figure:
    """Forecast i's |attribution| per (lag, feature) for every method, side by side.

    Methods have different units, so each map is divided by its own largest cell: colours
    compare where a method looks, not how much. Lags-only methods fill every feature row.

    >>> methods_figure({"integrated_gradients": e1, "shap": e2}, i=-1).savefig("cmp.png")
    """
    items = list(explanations.values())
    first = items[0]
    n_lags, n_features = first.values.shape[1:]
    fig = Figure(
        figsize=(max(7.0, 0.12 * n_lags + 3.0), 0.5 + len(items) * (0.35 * n_features + 0.9)),
        layout="constrained",
    )
    axes = fig.subplots(len(items), 1, sharex=True, squeeze=False)[:, 0]
    for ax, e in zip(axes, items):
        cells = np.abs(e.values[i]).T  # [L, F] -> [F, L]
        cells = cells / (cells.max() or 1.0)
        image = ax.imshow(cells, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(n_features), e.feature_names)
        ax.set_title(_title(e) + ("" if _has_features(e) else " (no feature axis)"), loc="left")
        for feature, lag in truth_cells or ():
            if feature in e.feature_names and lag in e.lags:
                col = int(np.flatnonzero(e.lags == lag)[0])
                row = e.feature_names.index(feature)
                ax.add_patch(
                    Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5)
                )
    _lag_axis(axes[-1], first.lags)
    fig.colorbar(image, ax=list(axes), label="|attribution| / largest cell")
    window = i if i >= 0 else len(first.values) + i
    fig.suptitle(f"One forecast (window {window}, step {first.horizon_step}), every method")
    return fig


def feature_time_figure(explanation, index: Sequence | None = None) -> Figure:
    """Each feature's share of |attribution| per forecast origin: which driver mattered when.

    `index` labels the origins (timestamps); defaults to 0..n-1.

    >>> feature_time_figure(e, index=test.index[-len(e.values):]).savefig("drivers.png")
    """
    e = explanation
    per_feature = np.abs(e.values).sum(axis=1)  # [n, L, F] -> [n, F]
    share = per_feature / np.maximum(per_feature.sum(axis=1, keepdims=True), 1e-12)
    x = pd.Index(index) if index is not None else np.arange(len(share))
    fig = Figure(figsize=(9.0, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.stackplot(x, share.T, labels=e.feature_names, alpha=0.85)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of |attribution|")
    ax.set_xlabel("forecast origin")
    ax.legend(loc="upper left", fontsize="small", ncols=min(len(e.feature_names), 6))
    ax.set_title(f"{_title(e)}: each feature's share of the forecast's attribution over time")
    return fig


def curves_figure(curves: dict) -> Figure:
    """Deletion (left; falls faster = faithful) and insertion (right; rises faster) curves."""
    fig = Figure(figsize=(10.0, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, c in curves.items():
        style = {"color": "grey", "ls": "--"} if name == "random" else {}
        left.plot(c["fraction"], c["deletion"], label=name, **style)
        right.plot(c["fraction"], c["insertion"], label=name, **style)
    left.set_title("deletion: most important cells first")
    left.set_ylabel("|f(x deleted) - f(baseline)| / |f(x) - f(baseline)|")
    right.set_title("insertion: most important cells first")
    right.set_ylabel("1 - |f(baseline inserted) - f(x)| / |f(x) - f(baseline)|")
    for ax in (left, right):
        ax.set_xlabel("fraction of cells")
        ax.set_xscale("symlog", linthresh=0.05)
        ax.grid(alpha=0.3)
    right.legend(fontsize="small")
    return fig
