"""The anomaly figure and files of `deepcast anomalies`: `anomalies.csv` and `anomalies.png`.

The figure is built on `matplotlib.figure.Figure` directly, never pyplot (no backend chosen,
no global state touched), as in evaluation/plots.py; both files are written atomically.

>>> table = f.anomalies(df, level=99)
>>> fig = anomaly_figure(table, target="y", level=99)
>>> write_anomalies(table, "runs/anomalies", target="y", level=99)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from deepcast import _atomic
from deepcast.errors import DataError
from deepcast.uncertainty.anomalies import COLUMNS

DETAIL_ROWS = 168  # rows in the lower panel, around the highest-scoring anomaly


def anomaly_figure(
    table: pd.DataFrame, *, target: str, level: float, units: str | None = None
) -> Figure:
    """The observed series, the model's one-step band at `level` and the flagged points, from
    a table of `Forecaster.anomalies` (timestamp index, COLUMNS). Over thousands of rows the
    band is thinner than the line, so when the series is longer than DETAIL_ROWS a lower panel
    shows that many rows around the highest-scoring anomaly, with the expected values.
    `units` labels the y axis (default: the data's own units)."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing or table.empty:
        raise DataError(f"an anomaly table needs rows and the columns {list(COLUMNS)}")
    table = table.copy()
    if isinstance(table.index, pd.DatetimeIndex) and table.index.tz is not None:
        table.index = table.index.tz_localize(None)  # wall-clock time on the axis
    flagged = table["is_anomaly"].to_numpy(dtype=bool)
    detail = len(table) > DETAIL_ROWS
    fig = Figure(figsize=(13, 8 if detail else 5), layout="tight")
    ax = fig.add_subplot(2 if detail else 1, 1, 1)
    _draw(ax, table, target, level, units, expected=not detail)
    ax.set_title(
        f"Anomalies in {target}: {flagged.sum()} of {len(table)} observations outside the "
        f"model's {level:g}% one-step-ahead interval"
    )
    if detail:
        score = table["score"].to_numpy()
        centre = int(np.nanargmax(np.where(flagged, score, -np.inf))) if flagged.any() else 0
        first = min(max(centre - DETAIL_ROWS // 2, 0), len(table) - DETAIL_ROWS)
        bottom = fig.add_subplot(2, 1, 2)
        _draw(bottom, table.iloc[first : first + DETAIL_ROWS], target, level, units, True)
        bottom.set_title(
            f"detail: {DETAIL_ROWS} rows around the highest score ({score[centre]:.3g})"
            if flagged.any()
            else f"detail: the first {DETAIL_ROWS} rows",
            fontsize="medium",
        )
    return fig


def _draw(ax, table: pd.DataFrame, target: str, level: float, units, expected: bool) -> None:
    """Band, observed line, optionally the expected line, and the flagged points on `ax`."""
    times = table.index
    flagged = table["is_anomaly"].to_numpy(dtype=bool)
    finite = np.isfinite(table["lo"].to_numpy()) & np.isfinite(table["hi"].to_numpy())
    ax.fill_between(
        times,
        table["lo"].where(finite),
        table["hi"].where(finite),
        color="tab:blue",
        alpha=0.25,
        linewidth=0,
        label=f"{level:g}% one-step interval",
    )
    ax.plot(times, table["actual"], color="0.2", linewidth=0.7, label=f"{target} (observed)")
    if expected:
        ax.plot(
            times,
            table["expected"],
            color="tab:blue",
            linewidth=0.9,
            linestyle="--",
            label="expected (one step ahead)",
        )
    ax.scatter(
        times[flagged],
        table["actual"].to_numpy()[flagged],
        s=30,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=1.4,
        zorder=3,
        label=f"anomaly: outside the interval ({flagged.sum()})",
    )
    ax.set_xlabel("time" if isinstance(times, pd.DatetimeIndex) else "row")
    ax.set_ylabel(f"{target} [{units}]" if units else f"{target} (original units)")
    # Outside the axes, on the right: inside it would hide data.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def write_anomalies(
    table: pd.DataFrame, out: str | Path, *, target: str, level: float
) -> tuple[Path, Path]:
    """`anomalies.csv` (timestamp, actual, expected, lo, hi, score, is_anomaly) and
    `anomalies.png` in directory `out`, each written atomically."""
    out = Path(out)
    rows = table.loc[:, list(COLUMNS)].rename_axis("timestamp")
    csv = _atomic.write_with(out / "anomalies.csv", lambda tmp: rows.to_csv(tmp))
    png = _atomic.save_figure(
        out / "anomalies.png", anomaly_figure(rows, target=target, level=level)
    )
    return csv, png
