"""Anomaly flags: observations outside the forecaster's own one-step-ahead interval.

Each observation is compared with what the model expected of it one step earlier, from the
rows before it. The band is the split-conformal interval at `level` on the step-1
calibration residuals (conformal.py), and the score says how far outside it a row is:

    score = |actual - expected| / half-width     (> 1: outside the band, an anomaly)

`level` is the interval level: on rows like the calibration rows a fraction 1 - level/100 of
normal observations falls outside by construction, about 1 in 100 at level 99. A rarer alarm
is a higher level, which needs at least level / (100 - level) calibration residuals (999 for
99.9; a ConfigError says so).

Three refinements over judging each row against the plain forecast, measured on planted
anomalies (10 seeds, benchmarks/results/anomalies.md; F1 at level 99 with a CNN-LSTM):

1. Cleaned inputs (`clean=True`). The model reads its own history, so right after a spike it
   expects an echo of it and the normal rows after the spike look anomalous. A flagged
   observation enters the later input windows clipped to its band (expected -/+ half-width),
   a Huber-type robust filter: what an ordinary tail row says about the next rows is kept,
   what an outlier would add is not. (Replacing it by the expected value did as well.)

2. Level shifts (`clean=True`). Clipping alone holds the model at the old level after a lasting
   shift and flags row after row inside it (alone it lowered F1, 0.54 -> 0.51). For the
   first row of each run of flags, the next LOOKAHEAD rows decide between an additive outlier
   (only that row is off) and a level shift (every row from it on is off by delta), the two
   intervention types of Chen & Liu (1993): a shift needs a Gaussian likelihood ratio of
   SHIFT_ODDS to 1, sigma from the calibration residuals. After a shift the model reads the
   series minus delta and delta is added back to what it expects, so the onset is flagged,
   the rows inside are judged at the new level, and the return is flagged as the shift back.
   1 and 2 together: F1 0.57 -> 0.68.

3. Robust calibration (`robust=True`). Anomalies among the calibration rows inflate the band
   once the conformal rank reaches them: at level 99.8 the quantile of 600 residuals is their
   largest, an anomaly (F1 0.24; 0.71 robust). Residuals beyond z * sigma are left out first,
   with sigma = median|r| / 0.674 (a few outliers barely move a median) and z the Bonferroni
   bound Phi^-1(1 - 0.01 / (2n)), 4.3 for n = 600: a clean Gaussian set keeps all its
   residuals with probability 99%. At level 99 it costs a little (F1 0.68 -> 0.65, two more
   false flags in 3000 rows, as the band narrows towards its level), and for a model whose
   errors are heavier-tailed than Gaussian it also trims genuine errors.

What limits F1 (0.64 at level 99, 0.77 at 99.8, against the z-score's 0.03): about 12 false
flags in 3000 rows at level 99, nearly all in the 40% the model was not trained on, against 13
true rows; and anomalies as small as 2.9 (6 noise sd) against a held-out one-step error sd of
about 0.65 and a band of +-1.9, so an eighth of the true rows stay inside it. A better forecast
is the lever.

How: a forward sweep of batch passes. Each pass forecasts, in one batch, up to CHUNK rows
after the first input that changed, clips every flagged row among the rows forecast so far
with its current forecast, and accepts the earliest new level shift, after which the rows
behind it are forecast again. A 3000-row series takes 8 to 13 passes (about 1 s with the
benchmark's CNN-LSTM); 20000 rows with 50 shifts, 117 passes, 12 times one plain pass. The
flags look ahead: a row's flag can depend on up to LOOKAHEAD rows after an earlier flag. The
observations are never changed, only what the model reads.

>>> df, truth = dc.datasets.synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
>>> train, val, _ = dc.split(df, val=0.2, test=0.2)
>>> f = dc.Forecaster("y", lookback=24, model="cnn_lstm", learning_rate=3e-3, patience=10)
>>> flags = f.fit(train, validation=val, epochs=60).anomalies(df, level=99)
>>> flags.columns.tolist()
['actual', 'expected', 'lo', 'hi', 'score', 'is_anomaly']
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
MAX_PASSES = 25  # per chunk of rows, on average
CHUNK = 1024  # rows forecast per pass after the first change


def anomalies(
    forecaster, frame: pd.DataFrame, level: float = 99, *, clean: bool = True, robust: bool = True
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
    n, scores = len(frame), calibration.scores[:, 0]
    half = half_width(scores, level, robust=robust)
    sigma = max(noise_sd(scores), np.finfo(np.float64).tiny)  # > 0: it divides
    model = _OneStep(forecaster, frame)
    expected = _sweep(model, half, sigma) if clean else model.expected(_Interventions.none(n))

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


def _sweep(model: _OneStep, half: float, sigma: float) -> np.ndarray:
    """The expected values once cleaning has reached a fixed point (module docstring, "How").
    Rows are forecast at most CHUNK at a time after the first change, so a long series with
    many shifts costs about (shifts + T / CHUNK) chunks, not shifts x T rows."""
    n, L = len(model.y), model.lookback
    state = _Interventions.none(n)
    expected, start = np.full(n - L, np.nan), L
    budget = MAX_PASSES * -(-n // CHUNK)  # passes, ceil(n / CHUNK) chunks
    for _ in range(budget):
        fresh = min(n, max(start, L) + CHUNK)
        expected = model.expected(state, start, fresh, previous=expected)
        state, first_change = _revise(model, state, expected, fresh, half, sigma)
        if first_change is None and fresh == n:
            return expected
        start = fresh if first_change is None else first_change + 1
    logger.warning("anomalies: no fixed point after %d passes; flags may be rough", budget)
    return model.expected(state, start, previous=expected)


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
        self,
        state: _Interventions,
        start: int = 0,
        stop: int | None = None,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        """What the model expects of rows lookback..T-1 given the rows before each: the
        forecast from the shift-free, clipped history plus the level in effect one row
        earlier. Only rows start..stop-1 are forecast; the others are taken from `previous`."""
        L, T = self.lookback, len(self.y)
        start, stop = max(start, L), T if stop is None else min(stop, T)
        out = np.array(previous, dtype=np.float64) if previous is not None else np.empty(T - L)
        if start < stop:
            scaled = self.scaled(state.inputs(self.y))[start - L : stop]
            windows = np.lib.stride_tricks.sliding_window_view(scaled, L, axis=0)[:-1]
            # [stop - start, F, L] -> [stop - start, L, F]
            forecast = self.predict(windows.swapaxes(1, 2))
            out[start - L : stop - L] = forecast + state.shift[start - 1 : stop - 1]
        return out


def _revise(
    model: _OneStep,
    state: _Interventions,
    expected: np.ndarray,
    fresh: int,
    half: float,
    sigma: float,
) -> tuple[_Interventions, int | None]:
    """One pass over the rows before `fresh` (those forecast under `state`): clip every
    flagged row (level-shift onsets aside) with its current forecast, and accept the earliest
    new level shift. Returns the new state, in which rows from `fresh` on are read as observed
    until they are forecast, and the first row before `fresh` whose model input changed (None:
    none did)."""
    L, y = model.lookback, model.y
    resid = y[L:fresh] - expected[: fresh - L]
    flagged = np.flatnonzero(np.abs(resid) > half) + L  # rows
    flagged = flagged[~np.isin(flagged, list(state.onsets))]

    clipped = np.full(len(y), np.nan)
    # shift-free forecast + the residual clipped to the band; shift[t] = shift[t-1] off onsets
    i = flagged - L
    clipped[flagged] = expected[i] - state.shift[flagged] + np.clip(resid[i], -half, half)
    # A forecast recomputed in another batch may differ in the last bits: not a change.
    same = np.isclose(clipped, state.clipped, rtol=0, atol=1e-6 * half, equal_nan=True)
    changed = np.flatnonzero(~same[:fresh])

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
    windows = inputs[cells]  # fancy indexing: a copy
    later = cells >= leaders[:, None, None]  # the leader and the rows after it
    windows[..., 0] = np.where(later, observed[cells], windows[..., 0])
    r = y[leaders] - expected[leaders - L]  # [m]
    outlier = windows.copy()
    at_leader = cells == leaders[:, None, None]
    clipped = expected[leaders - L] - state.shift[leaders] + np.clip(r, -half, half)
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
