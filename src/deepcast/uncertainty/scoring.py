"""Interval scores of a fitted forecaster on hold-out forecasts, next to an honest baseline.

The baseline is the seasonal naive with empirical-quantile intervals: its own residuals on the
history, per horizon step (what a planner gets for free). Pinball loss and CRPS are computed
over the quantiles the intervals stand for (alpha/2, 0.5 and 1 - alpha/2 per level, the point
forecast as the median), so every method is scored on the same footing.
"""

from __future__ import annotations

import numpy as np

from deepcast.evaluation import baselines, probabilistic
from deepcast.uncertainty import intervals


def interval_report(forecaster, scored: dict, levels: list, method: str, history=None) -> dict:
    """{"method", "coverage_80", "width_80", "winkler_80", ..., "pinball", "crps",
    "baselines": {"seasonal_naive": {...}}} on the forecasts of `scored`
    (evaluation/scoring.py)."""
    actual = scored["actual"]
    if method == "samples":  # sample paths (deepar): intervals and CRPS from the same draws
        draws = intervals.path_draws(
            forecaster, scored["windows"], intervals.PATH_SAMPLES, forecaster.seed
        )
        point, bands = intervals.sample_intervals(draws, levels)
    else:
        point, bands = intervals.intervals(
            forecaster, scored["windows"], levels, method, actual=actual, seed=forecaster.seed
        )
    report = {"method": method, **_scores(actual, point, bands)}
    if method == "samples":
        report["crps"] = probabilistic.crps_samples(actual, draws)
    past = _history_target(forecaster, history)
    period = forecaster.seasonal_period_
    if past is not None and len(past) > period + forecaster.horizon:
        origins = np.arange(period - 1, len(past) - forecaster.horizon)
        steps = np.arange(1, forecaster.horizon + 1)
        residuals = past[origins[:, None] + steps] - baselines.seasonal_naive(
            past, origins, forecaster.horizon, period
        )
        target = scored["frame"][forecaster.target].to_numpy()
        snaive = baselines.seasonal_naive(target, scored["origins"], forecaster.horizon, period)
        snaive_bands = probabilistic.empirical_quantile_intervals(snaive, residuals, levels)
        report["baselines"] = {"seasonal_naive": _scores(actual, snaive, snaive_bands)}
    return report


def _scores(actual: np.ndarray, point: np.ndarray, bands: dict) -> dict:
    scores = probabilistic.interval_scores(actual, bands)
    finite = all(np.isfinite(lo).all() and np.isfinite(hi).all() for lo, hi in bands.values())
    if finite:  # an infinite conformal bound (too few calibration points) has no pinball
        quantiles, values = [0.5], [point]
        for level, (lo, hi) in bands.items():
            q_lo, q_hi = probabilistic.level_quantiles(level)
            quantiles += [q_lo, q_hi]
            values += [lo, hi]
        order = np.argsort(quantiles)
        stacked = np.stack(values, axis=-1)[..., order]
        ordered = [quantiles[i] for i in order]
        scores["pinball"] = probabilistic.pinball(actual, stacked, ordered)
        scores["crps"] = probabilistic.crps_quantiles(actual, stacked, ordered)
    return scores


def _history_target(forecaster, history) -> np.ndarray | None:
    if history is None:
        return None
    return forecaster._frame(history, "history")[forecaster.target].to_numpy(dtype=np.float64)
