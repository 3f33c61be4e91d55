"""What a search leaves in the run directory: `tuning.json` and `tuning.png`.

The figure is a `matplotlib.figure.Figure` (never pyplot, so no global state is touched): on
top the score of every trial in order with the running best; then the best loss reached
against wall time (the engines' common yardstick); below, one small panel per hyperparameter
with each trial's score against its value, so its effect can be read off.

>>> json_path, png_path = write_report(result, "runs/x")
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from deepcast import _atomic
from deepcast.tuning.result import OBJECTIVE, TuningResult
from deepcast.tuning.space import Choice, Int

_BEST = {"marker": "*", "s": 160, "color": "tab:red", "edgecolor": "black", "zorder": 3}


def write_report(result: TuningResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `tuning.json` and `tuning.png` into `out_dir` atomically; return both paths."""
    out_dir = Path(out_dir)
    json_path = _atomic.write_json(out_dir / "tuning.json", result.to_json())
    png_path = _atomic.save_figure(out_dir / "tuning.png", tuning_figure(result))
    return json_path, png_path


def tuning_figure(result: TuningResult) -> Figure:
    """Score per trial with the running best, and score against each hyperparameter.

    >>> fig = tuning_figure(result)
    >>> fig.axes[0].get_title()
    'Validation loss per trial (random search)'
    """
    names = list(result.search_space.names)
    ncols = min(3, max(1, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 6.4 + 2.8 * nrows), layout="constrained")
    grid = fig.add_gridspec(2 + nrows, ncols, height_ratios=[1.3, 1.0] + [1.0] * nrows)
    done = result.completed
    best = result.best
    budgets = sorted({t.get("epochs") for t in done})
    colors = _budget_colors(budgets)

    ax = fig.add_subplot(grid[0, :])
    _score_per_trial(ax, result, done, colors)
    over_time = fig.add_subplot(grid[1, :])
    best_over_time(over_time, result.trials, label=result.search_name)
    over_time.legend(loc="upper right", fontsize="small")
    for i, name in enumerate(names):
        panel = fig.add_subplot(grid[2 + i // ncols, i % ncols])
        _score_against(panel, result, name, done, best, colors)
        if i % ncols == 0:
            panel.set_ylabel(f"{OBJECTIVE} (scaled)")
    failed = len(result.trials) - len(done)
    summary = f"{len(result.trials)} trials" + (f", {failed} not completed" if failed else "")
    if best is not None:
        summary += f"; best {OBJECTIVE} {best['score']:.4g} (trial {best['trial_id']})"
        if result.tolerance:
            summary += f", the fastest within {result.percent} of the lowest"
    fig.suptitle(f"Hyperparameter search of {result.target}: {summary}")
    return fig


def best_over_time(ax: Axes, trials: list[dict], label: str, color=None) -> None:
    """The lowest validation loss reached against wall time since the search began: one
    step line per search, so engines can share one panel (benchmarks/tuning_engines.py).
    Pruned trials count toward the time, not the loss."""
    done = [t for t in trials if t.get("finished_at") is not None]
    points = sorted(
        (t["finished_at"], t["score"])
        for t in done
        if t["status"] == "COMPLETED" and t["score"] is not None
    )
    if points:
        times = [p[0] for p in points]
        running = np.minimum.accumulate([p[1] for p in points])
        end = max(t["finished_at"] for t in done)
        ax.step([*times, end], [*running, running[-1]], where="post", label=label, color=color)
        ax.scatter(times, running, s=10, color=ax.lines[-1].get_color())
    ax.set_title("Best validation loss over wall time")
    ax.set_xlabel("seconds since the search began")
    ax.set_ylabel(f"best {OBJECTIVE} (scaled)")
    ax.grid(True, alpha=0.3)


def _budget_colors(budgets: list) -> dict:
    """One colour per epoch budget: Hyperband scores at 1 and 20 epochs are not comparable."""
    if len(budgets) <= 1:
        return {b: "tab:blue" for b in budgets}
    palette = ("tab:cyan", "tab:blue", "tab:purple", "tab:green", "tab:olive", "tab:brown")
    return {b: palette[i % len(palette)] for i, b in enumerate(budgets)}


def _score_per_trial(ax: Axes, result: TuningResult, done: list[dict], colors: dict) -> None:
    for budget, color in colors.items():
        points = [t for t in done if t.get("epochs") == budget]
        label = f"trial ({budget} epochs)" if len(colors) > 1 else "trial"
        ax.scatter(
            [t["number"] for t in points], [t["score"] for t in points], color=color, label=label
        )
    if done:
        ordered = sorted(done, key=lambda t: t["number"])
        running = np.minimum.accumulate([t["score"] for t in ordered])
        numbers = [t["number"] for t in ordered]
        ax.step(numbers, running, where="post", color="black", linewidth=1.2, label="best so far")
        best = result.best
        label = "chosen trial" if result.tolerance else "best trial"
        ax.scatter([best["number"]], [best["score"]], label=label, **_BEST)
        _maybe_log(ax, [t["score"] for t in done], axis="y")
        ax.legend(loc="upper right", fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Validation loss per trial ({result.search_name} search)")
    ax.set_xlabel("trial number (in the order run)")
    ax.set_ylabel(f"{OBJECTIVE} (scaled)")
    ax.grid(True, alpha=0.3)


def _score_against(
    ax: Axes, result: TuningResult, name: str, done: list[dict], best: dict | None, colors: dict
) -> None:
    param = result.search_space[name]
    done = [t for t in done if name in t["hyperparameters"]]  # a conditional entry: where set
    if best is not None and name not in best["hyperparameters"]:
        best = None
    values = [t["hyperparameters"][name] for t in done]
    scores = [t["score"] for t in done]
    categorical = isinstance(param, Choice)
    if categorical:
        # Evenly spaced categories: lookback 24/48/96 or batch 32/64/128 read best that way.
        levels = list(param.values)
        positions = {v: i for i, v in enumerate(levels)}
        x = [positions.get(v, np.nan) for v in values]
        ax.set_xticks(range(len(levels)), [str(v) for v in levels])
        ax.set_xlim(-0.5, len(levels) - 0.5)
    else:
        x = values
        if param.log:
            ax.set_xscale("log")
        if isinstance(param, Int):
            _integer_ticks(ax, param.log)
        ax.set_xlim(*_padded(param.low, param.high, param.log))
    point_colors = [colors.get(t.get("epochs"), "tab:blue") for t in done]
    ax.scatter(x, scores, c=point_colors, alpha=0.8, s=28)
    if best is not None:
        bx = positions.get(best["hyperparameters"][name]) if categorical else None
        bx = best["hyperparameters"][name] if bx is None and not categorical else bx
        ax.scatter([bx], [best["score"]], **_BEST)
    _maybe_log(ax, scores, axis="y")
    ax.set_title(name + (" (log scale)" if getattr(param, "log", False) else ""))
    ax.set_xlabel(name)
    ax.grid(True, alpha=0.3)


def _integer_ticks(ax: Axes, log: bool) -> None:
    """Whole numbers on the axis; powers of two on a log axis (units 16, 32, ..., 256)."""
    if log:
        ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _padded(low: float, high: float, log: bool) -> tuple[float, float]:
    if low == high:
        return (low * 0.9, high * 1.1) if log or low else (low - 1, high + 1)
    if log:
        factor = (high / low) ** 0.05
        return low / factor, high * factor
    pad = (high - low) * 0.05
    return low - pad, high + pad


def _maybe_log(ax: Axes, values: list[float], axis: str) -> None:
    """Log scale when losses span more than a factor of 20: one diverged trial would
    otherwise flatten all the others into a line."""
    positive = [v for v in values if v > 0]
    if len(positive) == len(values) and positive and max(positive) / min(positive) > 20:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
