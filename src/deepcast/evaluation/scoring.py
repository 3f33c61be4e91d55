"""The forecasts a fitted Forecaster is scored on: model and baselines at the same origins.

Shared by `evaluate`, `plot_forecast` and backtests, so every number and figure of a run
compares the systems on exactly the same targets.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from deepcast.errors import DataError
from deepcast.evaluation import baselines, metrics

logger = logging.getLogger(__name__)


def scored_forecasts(
    forecaster,
    data: pd.DataFrame,
    history: pd.DataFrame | None,
    known: pd.DataFrame | None = None,
) -> dict:
    """Model and baseline forecasts at every origin that has enough history for the model
    and the primary seasonal baseline, and whose H actual values lie in `data`. `known`:
    model forecasts already computed, one row per origin timestamp; used when it holds
    every origin scored here (fit's validation check), else the model forecasts again."""
    frame = forecaster._frame(data, "data")
    periods = forecaster.seasonal_periods_
    n_history = 0
    if history is not None:
        past = forecaster._frame(history, "history")
        if (past.index.tz is None) != (frame.index.tz is None):
            raise DataError(
                "history and data must both have time zones or both have none; history: "
                f"{past.index.tz}, data: {frame.index.tz}"
            )
        if len(past) and len(frame) and past.index[-1] >= frame.index[0]:
            raise DataError(
                f"history must end before data starts; history ends {past.index[-1]}, "
                f"data starts {frame.index[0]}"
            )
        past = past.iloc[max(0, len(past) - max(forecaster.lookback, *periods)) :]
        n_history = len(past)
        frame = pd.concat([past, frame])
    n = len(frame)
    first = max(n_history, forecaster.lookback, periods[0]) - 1
    origins = np.arange(first, n - forecaster.horizon)
    if len(origins) == 0:
        raise DataError(
            f"data: {n - n_history} rows are too few to score; with {n_history} rows of "
            f"history, lookback {forecaster.lookback}, seasonal period {periods[0]} and horizon "
            f"{forecaster.horizon}, no forecast has all its targets in the data"
        )
    target = frame[forecaster.target].to_numpy()
    x = forecaster._input_windows(frame)[origins - (forecaster.lookback - 1)]
    steps = np.arange(1, forecaster.horizon + 1)
    linear = forecaster.linear_baseline_.predict(forecaster._past(x))
    scored = {
        "frame": frame,
        "windows": x,
        "origins": origins,
        "times": frame.index[origins + 1],
        "actual": target[origins[:, None] + steps],
        "model": _model_forecasts(forecaster, x, frame.index[origins], known),
        "naive": baselines.naive(target, origins, forecaster.horizon),
    }
    for i, period in enumerate(periods):
        if period - 1 > first:
            logger.info("seasonal naive with period %d skipped: too little history", period)
            continue
        name = "seasonal_naive" if i == 0 else f"seasonal_naive_{period}"
        scored[name] = baselines.seasonal_naive(target, origins, forecaster.horizon, period)
    scored["linear"] = forecaster.scaler_.inverse(linear, column=0)
    return scored


def _model_forecasts(forecaster, x: np.ndarray, times: pd.Index, known: pd.DataFrame | None):
    """[N, H] forecasts at the origins `times`: looked up in `known` where it has them all."""
    if known is not None:
        rows = known.index.get_indexer(times)
        if (rows >= 0).all():
            return known.to_numpy()[rows]
    return forecaster._predict_windows(x)


def baseline_names(scored: dict) -> list[str]:
    """The baselines in `scored`, in report order: naive, each seasonal naive, linear."""
    return ["naive", *(name for name in scored if name.startswith("seasonal_naive")), "linear"]


def baseline_scores(scored: dict, mase_scale: float | None) -> dict[str, dict]:
    """Every metric of every baseline in `scored`, over all H steps, in report order: what
    `evaluate` reports and what `baselines.strongest_baseline` picks from.

    >>> baselines.strongest_baseline(baseline_scores(scored, forecaster.mase_scale_))
    'seasonal_naive_168'
    """
    return {
        name: metrics.all_metrics(scored["actual"], scored[name], mase_scale)
        for name in baseline_names(scored)
    }
