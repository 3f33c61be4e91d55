"""The forecast-versus-actual figure of a run (`forecast.png`).

Built on `matplotlib.figure.Figure` directly, never pyplot: no backend is selected, no global
state is touched (notebooks keep theirs), and nothing is saved here — callers use
`deepcast._atomic.save_figure`.

>>> fig = forecast_figure(ts, actual, predicted, target_name="load", units="MW")
>>> save_figure("runs/demo/forecast.png", fig)
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.baselines import baseline_label
from deepcast.evaluation.metrics import rmse as _rmse

_CONTEXT_COLOR = "0.65"
_BASELINE_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:olive")


def _first_step(values: np.ndarray, name: str) -> np.ndarray:
    """(n,) or (n, H) -> (n,): the plot shows one-step-ahead forecasts (the first column)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"{name} must be (n,) or (n, H). Received shape {values.shape}")
    return values


def _times(timestamps: Sequence | np.ndarray | pd.Index) -> np.ndarray:
    """Datetimes as tz-naive wall-clock datetime64 (what a reader expects on the axis);
    anything else (an integer step index) unchanged."""
    index = pd.Index(timestamps)
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            index = index.tz_localize(None)
        return index.to_numpy()
    return index.to_numpy()


def _fmt(value: float) -> str:
    """Short number for a legend: 3 significant digits, thousands without exponent."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _mark_holdout(ax: Axes, start: np.datetime64 | float) -> None:
    """Dotted vertical line and a label where the test part begins."""
    x = ax.convert_xunits(start)  # datetime64 -> matplotlib's float date
    ax.axvline(x, color="0.3", linestyle=":", linewidth=1.0)
    ax.annotate(
        "forecasts begin",
        xy=(x, 1.0),
        xycoords=ax.get_xaxis_transform(),  # x in data units, y as a fraction of the axes
        xytext=(4, -12),
        textcoords="offset points",
        fontsize="small",
        color="0.3",
    )


def _draw(
    ax: Axes,
    times: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    forecast_label: str,
    baselines: dict[str, tuple[np.ndarray, str]],
    context: tuple[np.ndarray, np.ndarray] | None,
    mark_holdout: bool,
) -> None:
    """Context, actual, forecast and baselines on one axes, optionally the hold-out marker."""
    if context is not None:
        ax.plot(*context, color=_CONTEXT_COLOR, linewidth=1.0, label="history (context)")
    ax.plot(times, actual, color="black", linewidth=1.2, label="actual")
    ax.plot(times, predicted, color="tab:blue", linewidth=1.2, label=forecast_label)
    for i, (values, label) in enumerate(baselines.values()):
        color = _BASELINE_COLORS[i % len(_BASELINE_COLORS)]
        ax.plot(times, values, color=color, linewidth=0.8, linestyle="--", label=label)
    if mark_holdout:
        _mark_holdout(ax, times[0])
    if np.issubdtype(times.dtype, np.datetime64):
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def forecast_figure(
    timestamps: Sequence | np.ndarray | pd.Index,
    actual: np.ndarray,
    predicted: np.ndarray,
    *,
    context_timestamps: Sequence | np.ndarray | pd.Index | None = None,
    context_actual: np.ndarray | None = None,
    target_name: str,
    units: str | None = None,
    rmse: float | None = None,
    baselines: dict[str, np.ndarray] | None = None,
    title: str | None = None,
    model_name: str = "model",
    zoom: int | None = None,
    bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Figure:
    """Forecast against actual values on the hold-out, with training context and baselines.

    `actual`, `predicted` and each baseline are (n,) or (n, H); with H > 1 the first step is
    drawn. `rmse` labels the model's line (e.g. the RMSE over all H steps); when None it is
    computed from the drawn step. Baselines are drawn thin and dashed, each labelled with its
    RMSE on the drawn step. `context_timestamps`/`context_actual` (the last stretch of the
    training data, a few lookbacks long) are drawn in grey before the hold-out marker.

    `zoom`: over thousands of points the forecast and the actual line merge into one band, so
    the whole test part alone cannot show how well the model tracks the series; it does show
    drift and regime changes. Pass e.g. `zoom=168` when the test part is long (> ~500 points)
    to add a second panel with only the last `zoom` points; the top panel still shows it all.
    The default (None) draws one panel, size (12, 5).

    `bands` maps a label ("80% conformal interval (coverage 81%)") to (lo, hi), each (n,) or
    (n, H): a fan chart, the widest band palest, under the lines.

    >>> fig = forecast_figure(ts, y, f, target_name="load", units="MW", model_name="LSTM")
    >>> fig.axes[0].get_legend().get_texts()[-1].get_text()
    'LSTM forecast (RMSE 1.23)'
    """
    times = _times(timestamps)
    actual = _first_step(actual, "actual")
    predicted = _first_step(predicted, "predicted")
    if not len(times) == len(actual) == len(predicted) > 0:
        raise DataError(
            "timestamps, actual and predicted must have the same non-zero length. "
            f"Received {len(times)}, {len(actual)} and {len(predicted)}"
        )
    if (context_timestamps is None) != (context_actual is None):
        raise ConfigError("pass both context_timestamps and context_actual, or neither")
    context = None
    if context_actual is not None:
        context = (_times(context_timestamps), _first_step(context_actual, "context_actual"))
        if len(context[0]) != len(context[1]):
            raise DataError("context_timestamps and context_actual differ in length")
    drawn = {}
    for name, values in (baselines or {}).items():
        values = _first_step(values, f"baseline {name!r}")
        if len(values) != len(actual):
            raise DataError(f"baseline {name!r} has {len(values)} values, expected {len(actual)}")
        drawn[name] = (values, f"{name} (RMSE {_fmt(_rmse(actual, values))})")
    score = _rmse(actual, predicted) if rmse is None else rmse
    forecast_label = f"{model_name} forecast (RMSE {_fmt(score)})"

    zoomed = zoom is not None and 0 < zoom < len(actual)
    fig = Figure(figsize=(12, 8 if zoomed else 5), layout="tight")
    ax = fig.add_subplot(2 if zoomed else 1, 1, 1)
    fan = {
        label: (_first_step(lo, f"band {label!r}"), _first_step(hi, f"band {label!r}"))
        for label, (lo, hi) in (bands or {}).items()
    }
    _draw_bands(ax, times, fan)
    _draw(ax, times, actual, predicted, forecast_label, drawn, context, mark_holdout=True)
    ax.set_title(title or f"{target_name}: {model_name} forecast on the hold-out")
    ax.set_xlabel("time")
    ax.set_ylabel(f"{target_name} [{units}]" if units else target_name)
    # Outside the axes, on the right: inside it would hide data or the hold-out marker.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    if zoomed:
        tail = slice(len(actual) - zoom, None)
        tail_baselines = {k: (v[tail], label) for k, (v, label) in drawn.items()}
        detail = fig.add_subplot(2, 1, 2)
        _draw_bands(detail, times[tail], {k: (lo[tail], hi[tail]) for k, (lo, hi) in fan.items()})
        _draw(
            detail,
            times[tail],
            actual[tail],
            predicted[tail],
            forecast_label,
            tail_baselines,
            context=None,
            mark_holdout=False,
        )
        detail.set_title(f"last {zoom} points", fontsize="medium")
        detail.set_xlabel("time")
        detail.set_ylabel(ax.get_ylabel())
    return fig


def _draw_bands(ax, times, bands: dict) -> None:
    """Interval bands, widest first so the narrower ones sit darker on top."""
    order = sorted(bands.items(), key=lambda item: -float(np.nanmean(item[1][1] - item[1][0])))
    for i, (label, (lo, hi)) in enumerate(order):
        alpha = 0.15 + 0.15 * i
        ax.fill_between(times, lo, hi, color="tab:blue", alpha=alpha, linewidth=0, label=label)


def backtest_figure(result) -> Figure:
    """`backtest.png`: MAE per fold for the model and each baseline (top), and the last
    fold's one-step-ahead forecasts of the model and the strongest baseline against the
    actual values (bottom)."""
    folds = result.folds
    last = result.last_fold
    target = last["target"]
    systems = ["model", *folds[0]["metrics"]["baselines"]]
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(1, 1.3))

    width = 0.8 / len(systems)
    x = np.arange(len(folds))
    for i, system in enumerate(systems):
        values = [
            f["metrics"]["mae"] if system == "model" else f["metrics"]["baselines"][system]["mae"]
            for f in folds
        ]
        label = last["model_name"].upper() if system == "model" else system.replace("_", " ")
        color = "tab:blue" if system == "model" else _BASELINE_COLORS[(i - 1) % 5]
        top.bar(x + (i - (len(systems) - 1) / 2) * width, values, width, label=label, color=color)
    top.set_xticks(x, [f"fold {f['fold']}\n{f['test_start'][:10]}" for f in folds])
    top.set_ylabel(f"MAE ({target}, original units)")
    mode = "retrained per fold" if result.settings["retrain"] else "trained on fold 1 only"
    top.set_title(
        f"Rolling-origin backtest: {len(folds)} expanding-window folds of "
        f"{result.settings['fold_size']} rows, {mode}"
    )
    top.set_ylim(0, top.get_ylim()[1] * 1.2)  # headroom for the legend above the bars
    top.legend(ncols=min(len(systems), 5), fontsize="small", loc="upper center")
    top.grid(axis="y", alpha=0.3)

    times = _times(last["timestamps"])
    bottom.plot(times, last["actual"], color="black", linewidth=1.0, label="actual")
    model_mae = float(np.mean(np.abs(last["model"] - last["actual"])))
    bottom.plot(
        times,
        last["model"],
        color="tab:blue",
        linewidth=1.0,
        label=f"{last['model_name'].upper()} t+1 (MAE {_fmt(model_mae)})",
    )
    # The strongest baseline over the folds (`baselines.strongest_baseline`), in its bar colour.
    baseline_mae = float(np.mean(np.abs(last["baseline"] - last["actual"])))
    bottom.plot(
        times,
        last["baseline"],
        color=_BASELINE_COLORS[(systems.index(last["baseline_name"]) - 1) % 5],
        linewidth=0.8,
        linestyle="--",
        alpha=0.8,
        label=f"{baseline_label(last['baseline_name'], last['seasonal_period'])} t+1 "
        f"(MAE {_fmt(baseline_mae)})",
    )
    bottom.set_title(f"Last fold: one-step-ahead forecasts of {target}")
    bottom.set_xlabel("time")
    bottom.set_ylabel(f"{target} (original units)")
    bottom.legend(loc="upper left", fontsize="small")
    bottom.grid(alpha=0.3)
    if isinstance(pd.Index(last["timestamps"]), pd.DatetimeIndex):
        locator = mdates.AutoDateLocator()
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig
