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


def anomaly_figure(
    table: pd.DataFrame, *, target: str, level: float, units: str | None = None
) -> Figure:
    """The observed series, the model's one-step band at `level` and the flagged points, from
    a table of `Forecaster.anomalies` (timestamp index, COLUMNS). `units` labels the y axis
    (default: the data's own units)."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing or table.empty:
        raise DataError(f"an anomaly table needs rows and the columns {list(COLUMNS)}")
    times = table.index
    if isinstance(times, pd.DatetimeIndex) and times.tz is not None:
        times = times.tz_localize(None)  # wall-clock time on the axis
    flagged = table["is_anomaly"].to_numpy(dtype=bool)
    finite = np.isfinite(table["lo"].to_numpy()) & np.isfinite(table["hi"].to_numpy())

    fig = Figure(figsize=(13, 5), layout="tight")
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(
        times,
        table["lo"].where(finite),
        table["hi"].where(finite),
        color="tab:blue",
        alpha=0.25,
        linewidth=0,
        label=f"{level:g}% one-step interval (expected -/+ half-width)",
    )
    ax.plot(times, table["actual"], color="0.2", linewidth=0.7, label=f"{target} (observed)")
    ax.scatter(
        times[flagged],
        table["actual"].to_numpy()[flagged],
        s=28,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=1.4,
        zorder=3,
        label=f"anomaly: outside the interval ({flagged.sum()} of {len(table)})",
    )
    ax.set_title(
        f"Anomalies in {target}: observations outside the model's {level:g}% one-step-ahead "
        "interval"
    )
    ax.set_xlabel("time" if isinstance(times, pd.DatetimeIndex) else "row")
    ax.set_ylabel(f"{target} [{units}]" if units else f"{target} (original units)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


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
