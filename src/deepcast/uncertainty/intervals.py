"""Prediction intervals of a fitted forecaster, by method, in original units.

    conformal     split conformal on calibration residuals per step (CQR on a quantile head);
                  coverage guaranteed for exchangeable data (conformal.py)
    aci           adaptive conformal: the level adapts as each actual arrives (conformal.py)
    mc_dropout    forecasts sampled with dropout on (mc_dropout.py): their variance plus the
                  noise variance of the validation residuals (Zhu & Laptev 2017), Gaussian
    quantile      the quantile head's own quantiles
    distribution  quantiles of the forecast distribution (Gaussian, Student t or negative
                  binomial head)
    samples       sample paths of an autoregressive model (deepar), drawn step by step from
                  its own distribution (ancestral sampling): the point is their median

The first two are calibrated; the last four are what the model believes, reported with
their measured coverage and never promised.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from deepcast.errors import ConfigError
from deepcast.evaluation.probabilistic import level_quantiles
from deepcast.uncertainty import mc_dropout
from deepcast.uncertainty.conformal import AdaptiveConformal, SplitConformal

METHODS = ("conformal", "aci", "mc_dropout", "quantile", "distribution", "samples")
MC_SAMPLES = 100
PATH_SAMPLES = 200  # sample paths per window behind the intervals of method "samples"


def checked_levels(levels) -> list[float]:
    """Levels in percent, each in (0, 100), as given order without repeats."""
    if levels is None:
        return []
    values = [levels] if isinstance(levels, (int, float)) else list(levels)
    out = []
    for level in values:
        level_quantiles(level)  # ConfigError naming the level when out of (0, 100)
        level = int(level) if float(level).is_integer() else float(level)
        if level not in out:
            out.append(level)
    return out


def default_method(forecaster) -> str:
    """Calibrated intervals when there are calibration scores, else the head's own, else
    MC dropout for a family that samples; ConfigError when there is nothing to go on. An
    autoregressive family (deepar) forecasts by its sample paths."""
    if _has_sample_paths(forecaster.model_config_):
        return "samples"
    if getattr(forecaster, "conformal_", None) is not None:
        return "conformal"
    if forecaster.head.kind == "quantile":
        return "quantile"
    if not forecaster.head.is_point:
        return "distribution"
    if forecaster.model_config_.dropout_sampling:
        return "mc_dropout"
    raise ConfigError(
        f"{forecaster.model_name} has no intervals yet: call f.calibrate(validation_data) "
        "(or fit with validation data), or fit with loss='quantile' or 'gaussian'"
    )


def check_before_fit(forecaster, levels, method: str | None) -> None:
    """What can be known before training: the levels, the method's name, and whether the
    configured family and loss can give it (conformal scores come with validation data)."""
    checked_levels(levels)
    if method is not None:
        _check_capability(forecaster, forecaster.configured_model(), method)


def check_method(forecaster, method: str) -> str:
    """`method` if the fitted forecaster can give it, else ConfigError saying what it needs."""
    _check_capability(forecaster, forecaster.model_config_, method)
    if method in ("conformal", "aci") and getattr(forecaster, "conformal_", None) is None:
        raise ConfigError(
            f"method={method!r} needs calibration scores: call f.calibrate(data) on data the "
            "model was not trained on (fit with validation data does it)"
        )
    if method == "mc_dropout" and (forecaster.start_ or {}).get("gate_closed"):
        raise ConfigError(
            "method='mc_dropout': the network was gated off (it did not beat "
            "its baseline start), so its dropout does not move the forecast; "
            "use conformal intervals"
        )
    return method


def _check_capability(forecaster, family, method: str) -> None:
    """Whether the family (dropout) and the loss (head) can give `method` at all."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}. Received: {method!r}")
    head = forecaster.head
    if method == "quantile" and head.kind != "quantile":
        raise ConfigError(
            f"method='quantile' needs a quantile head (loss='quantile'); "
            f"the loss is {forecaster.training_loss!r}"
        )
    if method == "distribution" and head.output not in ("distribution", "counts"):
        raise ConfigError(
            f"method='distribution' needs loss='gaussian', 'student_t' or 'negative_binomial'; "
            f"the loss is {forecaster.training_loss!r}"
        )
    if method == "mc_dropout" and not family.dropout_sampling:
        raise ConfigError(
            f"method='mc_dropout': {family.name} has no dropout to sample; use conformal intervals"
        )
    if method == "samples" and not _has_sample_paths(family):
        raise ConfigError(
            f"method='samples' draws the sample paths of an autoregressive model (deepar); "
            f"{family.name} forecasts every step at once: use 'distribution', 'mc_dropout' or "
            "'conformal'"
        )


def _has_sample_paths(family) -> bool:
    """Whether the family forecasts by sample paths (declares `sample_paths`, as deepar)."""
    return getattr(family, "sample_paths", None) is not None


def intervals(
    forecaster, x: np.ndarray, levels, method: str, actual: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """(point [N, H], {level: (lo [N, H], hi [N, H])}) for scaled windows `x`, in original
    units. `actual` [N, H] (NaN where not yet observed) drives ACI's updates."""
    if method == "samples":
        return sample_intervals(path_draws(forecaster, x, PATH_SAMPLES, seed), levels)
    params = forecaster._predict_params(x)
    head = forecaster.head
    point = head.point(params)
    bands = {}
    if method == "mc_dropout":
        draws = dropout_draws(forecaster, x, MC_SAMPLES, seed)  # [N, H, S]
        calibration = getattr(forecaster, "conformal_", None)
        if calibration is None:  # the weights' uncertainty alone: quantiles of the draws
            for level in levels:
                q_lo, q_hi = level_quantiles(level)
                lo, hi = np.quantile(draws, q_lo, axis=-1), np.quantile(draws, q_hi, axis=-1)
                bands[level] = (lo, hi)
            return point, bands
        # Zhu & Laptev (2017): the draws' variance plus the noise variance, estimated by the
        # mean squared validation residual per step, around the draws' mean.
        noise = np.mean(calibration.scores**2, axis=0)  # [H]
        centre, spread = draws.mean(axis=-1), np.sqrt(draws.var(axis=-1) + noise)
        for level in levels:
            z = NormalDist().inv_cdf(level_quantiles(level)[1])
            bands[level] = (centre - z * spread, centre + z * spread)
        return point, bands
    for level in levels:
        q_lo, q_hi = level_quantiles(level)
        if method in ("quantile", "distribution"):
            bands[level] = (head.quantile(params, q_lo), head.quantile(params, q_hi))
        elif method == "conformal":
            bands[level] = _conformal(forecaster, params, point, level)
        else:  # aci
            aci = AdaptiveConformal(forecaster.conformal_.scores, level, finite=True)
            y = np.full_like(point, np.nan) if actual is None else actual
            bands[level] = aci.rolling(y, point)
    return point, bands


def path_draws(forecaster, x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """[N, H, n] sample paths of an autoregressive model (deepar), in original units."""
    paths = forecaster.model_config_.sample_paths(forecaster.model_, x, n, seed)  # scaled
    return forecaster.scaler_.inverse(paths, column=0)


def sample_intervals(draws: np.ndarray, levels) -> tuple[np.ndarray, dict]:
    """(median [N, H], {level: (lo, hi)}) of draws [N, H, n]. The bounds are the order
    statistics at positions p * (n + 1) ("weibull"): a new draw falls between them with
    probability `level` (in expectation), where numpy's default positions would cover
    level * (n - 1) / (n + 1) (1.8 points short at 90% with 100 draws)."""
    bands = {}
    for level in levels:
        q_lo, q_hi = level_quantiles(level)
        lo = np.quantile(draws, q_lo, axis=-1, method="weibull")
        hi = np.quantile(draws, q_hi, axis=-1, method="weibull")
        bands[level] = (lo, hi)
    return np.median(draws, axis=-1), bands


def dropout_draws(forecaster, x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """[N, H, n] point forecasts (the location of a head) sampled with dropout on, in
    original units."""
    raw = mc_dropout.sample(forecaster.model_, x, n, seed)  # [N, H(, C), n]
    if forecaster.head.is_point:
        return forecaster._to_original(raw)
    channels_last = np.moveaxis(raw, -1, -2)  # [N, H, n, C], as _to_original reads
    return forecaster._to_original(channels_last)[..., 0]


def samples(forecaster, x: np.ndarray, n: int, method: str, seed: int = 0) -> np.ndarray:
    """[N, H, n] draws of the forecast in original units: from the head's distribution
    ("distribution", "quantile"), the sample paths of an autoregressive model ("samples"),
    with dropout on ("mc_dropout"), or the point plus a calibration residual of its step with
    a random sign ("conformal": symmetric noise)."""
    if method == "samples":
        return path_draws(forecaster, x, n, seed)
    rng = np.random.default_rng(seed)
    if method in ("quantile", "distribution"):
        return forecaster.head.sample(forecaster._predict_params(x), n, rng)
    if method == "mc_dropout":
        return dropout_draws(forecaster, x, n, seed)
    if method != "conformal":
        raise ConfigError(f"samples cannot be drawn by method {method!r}; use conformal")
    point = forecaster._predict_windows(x)  # [N, H]
    scores = forecaster.conformal_.scores  # [n_cal, H]
    picks = rng.integers(0, len(scores), size=(*point.shape, n))
    residuals = scores[picks, np.arange(point.shape[1])[None, :, None]]  # [N, H, n]
    return point[..., None] + rng.choice([-1.0, 1.0], size=residuals.shape) * residuals


def _conformal(forecaster, params, point, level):
    calibration: SplitConformal = forecaster.conformal_
    if float(level) in calibration.cqr_scores:  # the head's own quantiles, conformalised
        q_lo, q_hi = level_quantiles(level)
        head = forecaster.head
        return calibration.interval(
            point, level, head.quantile(params, q_lo), head.quantile(params, q_hi)
        )
    return calibration.interval(point, level)


def quantile_pairs(forecaster, params: np.ndarray) -> dict:
    """{level: (lo, hi)} of a quantile head's symmetric quantile pairs (0.1 and 0.9 -> 80),
    for CQR calibration."""
    head = forecaster.head
    if head.kind != "quantile":
        return {}
    values = head.quantile_values(params)
    pairs = {}
    for i, q in enumerate(head.quantiles):
        upper = [j for j, p in enumerate(head.quantiles) if abs(p - (1 - q)) < 1e-9]
        if q < 0.5 and upper:
            level = round(100 * (1 - 2 * q), 6)
            level = int(level) if float(level).is_integer() else level
            pairs[level] = (values[..., i], values[..., upper[0]])
    return pairs
