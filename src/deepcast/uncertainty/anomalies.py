"""Anomaly flags: observations outside the forecaster's own one-step-ahead interval.

Each observation is compared with what the model expected of it one step earlier. The band
is the conformal interval at `level` (split conformal on the step-1 calibration residuals,
conformal.py), so on data like the calibration data a fraction 1 - level/100 of normal
observations is flagged by construction, and the score says how far outside it is:

    score = |actual - expected| / half-width     (> 1: outside the band, an anomaly)

`level` keeps its meaning: at 99, about 1 in 100 normal rows is flagged. On 3000 rows with a
dozen real anomalies that is some 30 false flags, so precision at level 99 cannot pass about
0.3 whatever the model; a rarer alarm is a higher level (99.9 needs >= 999 calibration rows).

Three refinements, each measured on planted anomalies (benchmarks/anomalies.py), make a flag
mean "this row is surprising given the rows before it" rather than "a row near a surprise":

1. Robust calibration (`robust=True`). The calibration rows may hold anomalies, and a handful
   inflates the band: the 99% quantile of 600 residuals is their 6th largest. Residuals no
   clean series would produce are left out first: those beyond z * sigma, with sigma =
   median|r| / 0.674 (the Gaussian scale of the residuals, which a few outliers barely move)
   and z the Bonferroni bound Phi^-1(1 - 0.01 / (2n)) (4.3 for n = 600), so a clean Gaussian
   calibration set keeps every residual with probability 99%. The band is the conformal
   quantile of the rest.

2. Cleaned inputs (`clean=True`). The model reads its own history, so right after a spike it
   expects an echo of it, and the normal rows after the spike look anomalous. A flagged
   observation therefore enters the later input windows clipped to its band (expected -/+
   half-width): a Huber-type robust filter, which keeps what an ordinary tail value says about
   the next rows and drops what an outlier would add.

3. Level shifts (`clean=True`). Clipping would also hold the model at the old level after a
   lasting shift and flag every row after it. For the first of a run of flagged rows the
   next `LOOKAHEAD` rows decide, by their absolute one-step errors, between an additive
   outlier (only that row is off: clip it) and a level shift (every row from it on is off by
   delta: the model reads the series minus delta, and delta is added back to what it
   expects). So the shift's first row is flagged, the rows inside it are judged at the new
   level, and its end is flagged as the shift back. This looks a few rows ahead: a row's flag
   can depend on up to `LOOKAHEAD` rows after the anomaly before it.

The passes: every pass forecasts the rows after the first change in one batch, clips every
flagged row with its current forecast and accepts the earliest new level shift; the rows after
a shift are forecast again in the next pass, so a series with s shifts takes about s + 2
passes. The row values are never changed, only what the model reads.

>>> df, truth = dc.datasets.synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
>>> train, val, _ = dc.split(df, val=0.2, test=0.2)
>>> f = dc.Forecaster("y", lookback=48, model="cnn_lstm").fit(train, validation=val)
>>> flags = f.anomalies(df, level=99)     # timestamp, actual, expected, lo, hi, score, is_anomaly
"""

from __future__ import annotations

import logging
from statistics import NormalDist

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError
from deepcast.uncertainty import intervals
from deepcast.uncertainty.conformal import SplitConformal

logger = logging.getLogger(__name__)

COLUMNS = ("actual", "expected", "lo", "hi", "score", "is_anomaly")
LOOKAHEAD = 6  # rows after a flag that tell an additive outlier from a level shift
SHIFT_ODDS = 100  # likelihood ratio of the next rows that makes a flag a level shift
TRIM_ALPHA = 0.01  # chance that robust calibration drops a residual of a clean Gaussian set
MAX_PASSES = 25
_KEEP = 1.0  # EXPERIMENT


def anomalies(
    forecaster, frame: pd.DataFrame, level: float = 99, *, robust: bool = True, clean: bool = True
) -> pd.DataFrame:
    """One row per observation of `frame` after its first `lookback` rows (they have no
    forecast): timestamp index, then COLUMNS. `frame` is the forecaster's validated input
    frame (`Forecaster._frame`); `robust` and `clean` as in the module docstring."""
    (level,) = intervals.checked_levels([level])
    calibration = getattr(forecaster, "conformal_", None)
    if calibration is None:
        raise ConfigError(
            "anomalies need calibration scores: fit with validation data, or call "
            "f.calibrate(data) on rows the model was not trained on"
        )
    scores = calibration.scores[:, 0]
    half, sigma = half_width(scores, level, robust=robust), noise_sd(scores)
    model = _OneStep(forecaster, frame)
    state = _Interventions.none(len(frame))
    expected = model.expected(state)
    for _ in range(MAX_PASSES if clean else 0):
        state, first_change = _revise(model, state, expected, half, sigma)
        if first_change is None:
            break
        expected = model.expected(state, start=first_change + 1, previous=expected)
    else:
        if clean:
            logger.warning(
                "anomalies: no fixed point after %d passes; flags may be rough", MAX_PASSES
            )

    actual = model.y[model.lookback :]
    distance = np.abs(actual - expected)
    score = distance / half if half > 0 else np.where(distance > 0, np.inf, 0.0)
    return pd.DataFrame(
        {
            "actual": actual,
            "expected": expected,
            "lo": expected - half,
            "hi": expected + half,
            "score": score,
            "is_anomaly": score > 1.0,
        },
        index=frame.index[model.lookback :].rename("timestamp"),
    )


def half_width(scores: np.ndarray, level: float, robust: bool = True) -> float:
    """The conformal half-width at `level` of absolute step-1 residuals `scores` (n,), after
    leaving out those beyond the Bonferroni bound when `robust` (module docstring, 1).
    ConfigError when the level needs more residuals than there are.

    >>> half_width(np.abs(np.random.default_rng(0).standard_normal(1000)), level=99)
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(scores)
    if robust and n:
        sigma = noise_sd(scores)
        cut = sigma * NormalDist().inv_cdf(1 - TRIM_ALPHA / (2 * n))
        if sigma > 0 and scores[-1] > cut:
            kept = scores[scores <= cut]
            logger.debug(
                "anomalies: %d of %d calibration residuals beyond %.3g left out",
                n - len(kept),
                n,
                cut,
            )
            scores = kept
    half = float(SplitConformal(scores[:, None]).quantile(level)[0])
    if not np.isfinite(half):
        # ceil((n + 1) level / 100) <= n from n = level / (100 - level) on.
        needed = int(np.ceil(round(level / (100 - level), 9)))
        raise ConfigError(
            f"level={level} needs at least {needed} calibration residuals and the forecaster "
            f"has {len(scores)} usable: lower the level, or call f.calibrate(data) on more "
            "rows the model was not trained on"
        )
    return half


def noise_sd(scores: np.ndarray) -> float:
    """The Gaussian sd of residuals from their absolute values, robustly: median |r| is 0.674
    sd, and a few outliers barely move a median."""
    return float(np.median(scores)) / NormalDist().inv_cdf(0.75)


class _Interventions:
    """What the model reads instead of the raw target (original units, one entry per row):
    `shift` is the level offset in effect at each row (the sum of the accepted level shifts
    up to it), `clipped` the input value of an additive outlier in the shift-free series
    (NaN: the row as observed), `onsets` the rows where a level shift starts."""

    def __init__(self, shift: np.ndarray, clipped: np.ndarray, onsets: frozenset[int]):
        self.shift, self.clipped, self.onsets = shift, clipped, onsets

    @classmethod
    def none(cls, n: int) -> _Interventions:
        return cls(np.zeros(n), np.full(n, np.nan), frozenset())

    def inputs(self, y: np.ndarray) -> np.ndarray:
        """The target as the model reads it: shift-free, outliers clipped."""
        return np.where(np.isnan(self.clipped), y - self.shift, self.clipped)


class _OneStep:
    """The forecaster's step-1 forecasts of `frame` with the target replaced as an
    `_Interventions` says; covariates are never touched."""

    def __init__(self, forecaster, frame: pd.DataFrame):
        self.forecaster, self.lookback = forecaster, forecaster.lookback
        self.frame = frame
        self.y = frame[forecaster.target].to_numpy(dtype=np.float64)
        # The target is column 0 of the scaled inputs.
        self.mean, self.scale = (
            float(v[0]) for v in (forecaster.scaler_.mean, forecaster.scaler_.scale)
        )

    def scaled(self, target: np.ndarray) -> np.ndarray:
        """[T, F] scaled model inputs with `target` as the target column."""
        inputs = self.frame.copy()
        inputs[self.forecaster.target] = target
        return self.forecaster.scaler_.transform(inputs.to_numpy())

    def scaled_target(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.scale

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """[N, L, F] scaled windows -> [N] step-1 forecasts in original units."""
        return self.forecaster._predict_windows(windows)[:, 0]

    def expected(
        self, state: _Interventions, start: int = 0, previous: np.ndarray | None = None
    ) -> np.ndarray:
        """What the model expects of rows lookback..T-1 given the rows before each: the
        forecast from the shift-free, clipped history plus the level in effect one row
        earlier. Rows before `start` are taken from `previous` (their inputs did not change)."""
        L, T = self.lookback, len(self.y)
        start = max(start, L)
        out = np.array(previous, dtype=np.float64) if previous is not None else np.empty(T - L)
        if start < T:
            scaled = self.scaled(state.inputs(self.y))[start - L :]
            windows = np.lib.stride_tricks.sliding_window_view(scaled, L, axis=0)[:-1]
            # [T - start, F, L] -> [T - start, L, F]
            out[start - L :] = self.predict(windows.swapaxes(1, 2)) + state.shift[start - 1 : -1]
        return out


def _revise(
    model: _OneStep, state: _Interventions, expected: np.ndarray, half: float, sigma: float
) -> tuple[_Interventions, int | None]:
    """One pass: clip every flagged row (level-shift onsets aside) with its current forecast,
    and accept the earliest new level shift. Returns the new state and the first row whose
    model input changed (None: nothing did, a fixed point)."""
    L, y = model.lookback, model.y
    resid = y[L:] - expected
    flagged = np.flatnonzero(np.abs(resid) > half) + L  # rows
    flagged = flagged[~np.isin(flagged, list(state.onsets))]

    clipped = np.full(len(y), np.nan)
    # shift-free forecast + the residual clipped to the band; shift[t] = shift[t-1] off onsets
    i = flagged - L
    clipped[flagged] = expected[i] - state.shift[flagged] + np.clip(resid[i], -half, half) * _KEEP
    changed = np.flatnonzero(
        ~((clipped == state.clipped) | (np.isnan(clipped) & np.isnan(state.clipped)))
    )

    first_change = int(changed[0]) if len(changed) else None
    shift = state.shift
    onsets = state.onsets
    leaders = flagged[~np.isin(flagged - 1, flagged)]
    onset = _first_level_shift(model, state, expected, half, sigma, leaders)
    if onset is not None:
        row, delta = onset
        shift = state.shift.copy()
        shift[row:] += delta
        clipped[row:] = np.nan  # forecast again at the new level in the next pass
        onsets = onsets | {row}
        first_change = row if first_change is None else min(first_change, row)
    return _Interventions(shift, clipped, onsets), first_change


def _first_level_shift(
    model: _OneStep,
    state: _Interventions,
    expected: np.ndarray,
    half: float,
    sigma: float,
    leaders: np.ndarray,
) -> tuple[int, float] | None:
    """(row, delta) of the earliest leading flag whose next rows fit a level shift better than
    an additive outlier, or None. Both hypotheses are scored in one batch: with row t clipped
    (outlier), or with rows t.. moved back by its residual r (shift); the rows after t are read
    as observed (shift-free) under both. delta = r + the median of the shift's next errors."""
    L, y = model.lookback, model.y
    k = min(LOOKAHEAD, L)
    leaders = leaders[leaders < len(y) - 1]
    if not len(leaders):
        return None
    observed = model.scaled(y - state.shift)[:, 0]  # [T], shift-free, nothing clipped
    inputs = model.scaled(state.inputs(y))  # [T, F], as the model reads them now
    ahead = np.arange(1, k + 1)
    rows = leaders[:, None] + ahead[None, :]  # [m, k]: the rows after each leader
    valid = rows < len(y)
    rows = np.minimum(rows, len(y) - 1)
    # [m, k, L] row numbers of each window, then [m, k, L, F] the windows themselves
    cells = rows[..., None] - L + np.arange(L)
    windows = inputs[cells].copy()
    later = cells >= leaders[:, None, None]  # the leader and the rows after it
    windows[..., 0] = np.where(later, observed[cells], windows[..., 0])
    r = y[leaders] - expected[leaders - L]  # [m]
    outlier = windows.copy()
    at_leader = cells == leaders[:, None, None]
    clipped = expected[leaders - L] - state.shift[leaders] + np.clip(r, -half, half) * _KEEP
    outlier[..., 0] = np.where(
        at_leader, model.scaled_target(clipped)[:, None, None], outlier[..., 0]
    )
    shifted = windows.copy()
    shifted[..., 0] -= np.where(later, (r / model.scale)[:, None, None], 0.0)

    m = len(leaders)
    both = model.predict(np.concatenate([outlier, shifted]).reshape(-1, L, windows.shape[-1]))
    base = y[rows] - state.shift[rows - 1]  # [m, k]
    err_outlier = base - both[: m * k].reshape(m, k)
    err_shift = base - r[:, None] - both[m * k :].reshape(m, k)
    # Gaussian log-likelihood ratio of the next rows, shift against outlier.
    gain = np.where(valid, err_outlier**2 - err_shift**2, 0.0).sum(axis=1) / (2 * sigma**2)
    shifts = np.flatnonzero(gain > np.log(SHIFT_ODDS))
    if not len(shifts):
        return None
    j = shifts[0]
    delta = r[j] + float(np.median(err_shift[j][valid[j]]))
    return int(leaders[j]), delta
