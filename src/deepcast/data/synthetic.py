"""Synthetic hourly series with planted ground truth, for tests, demos and explanation checks.

The target `y` is driven by two known cells of the input window — `x1` three hours back and
`x2` six hours back — plus their product, on top of a trend, daily and weekly seasonality and
autocorrelated noise. A model that reads the window should beat seasonal-naive forecasts by
far, and an attribution method should rank the planted cells among the first. Not alone at
the top: the AR(1) noise makes y's own newest row a driver of the next one too, and the exact
one-step mean ranks y lag 1 above x2 lag 6 (benchmarks/explain_oracle.py).

Exact formula (t = hours since `start`, so t = 0 is the first row; h_t = hour of day 0..23 and
w_t = hour of week 0..167 (Monday 00:00 = 0), both read from the timestamp; e1, e2, e3 are
independent standard normal draws; the AR(1) states start from their stationary distribution):

    x1_t = 0.5 sin(2 pi h_t / 24) + u1_t       u1_t = 0.3 u1_{t-1} + 0.954 e1_t
    x2_t = 0.5 cos(2 pi w_t / 168) + u2_t      u2_t = 0.2 u2_{t-1} + 0.980 e2_t
    y_t  = 10 + 0.0005 t                                          (trend)
         + 1.0 sin(2 pi (h_t - 6) / 24)                           (daily)
         + 0.8 sin(2 pi w_t / 168)                                (weekly)
         + 2.0 x1_{t-3} - 1.5 x2_{t-6} + 1.0 x1_{t-3} x2_{t-6}    (planted drivers)
         + n_t                                 n_t = 0.7 n_{t-1} + 0.35 e3_t

Why these numbers: u1 and u2 have unit variance and weak memory (lag-1 autocorrelation about
0.4 and 0.3 with the seasonal part), so the planted lag is identifiable rather than smeared
over its neighbours; the drivers carry about 80% of y's variance; the interaction term is what
a linear model on the window cannot capture.

Lag convention: lag k is the row k steps before the forecast target, so when forecasting y_t
one step ahead, lag 1 is the newest row of the input window and the planted cells are
(x1, lag 3) and (x2, lag 6).

Planted anomalies (`anomalies=N`): N anomalies, spikes (one row, +k sd), dips (one row, -k sd)
and level shifts (y moved by +-k sd for 24..72 rows, then back), with k drawn from 6..10 and
sd = 0.35 / sqrt(1 - 0.7^2) ~ 0.49, the stationary sd of the noise n_t (the part of y that
neither the inputs nor the calendar explain). That is only about one sd of y itself (~3.5), so
a detector has to model the seasonality and the drivers to see them. The kinds take turns
(shuffled), so every N >= 3 has all three. None lies in the first 5% of rows, the rest is cut
into N equal segments with one anomaly in each, and each anomaly's last jump (a spike's or
dip's row, a shift's return) is at least 48 rows before the next anomaly starts. Everything
about them comes from a second random stream, `default_rng((seed, 1))`, so the series under
them is the anomaly-free series of the same seed, value for value.

Planted drift (`drift=..., drift_at=r`): from row r on (r = 0 is the first row returned),
the series follows a changed formula, for testing drift monitors. Rows before r, x1 and x2
everywhere, and every random draw are those of the drift-free series of the same seed.

    "level"   y_t += 3.15 from row r on: one sd of y about its trend (Y_SD; the sd of y minus
              0.0005 t, measured on 400,000 rows of three seeds: 3.152, 3.151, 3.154).
    "driver"  the coefficient of x1_{t-3} changes from 2.0 to 1.0 from row r on (the other
              terms stay). The inputs keep their distribution, only their relation to y
              changes (concept drift an input monitor cannot see). y loses about a third of
              its variance, and a model that learned 2.0 gains an error term -1.0 x1_{t-3}
              (sd ~1.06, twice the noise n_t's): large next to a good model's one-step
              errors, small next to a model that missed the x1 x2 interaction.

>>> df, truth = synthetic(n_steps=500, seed=0, return_truth=True)
>>> truth.cells
(('x1', 3), ('x2', 6))
>>> df, truth = synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
>>> truth.anomalies.columns.tolist()
['kind', 'magnitude', 'end']
>>> df, truth = synthetic(n_steps=2000, seed=0, drift="level", drift_at=1000, return_truth=True)
>>> truth.drift, truth.drift_at
('level', 1000)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, overload

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError

FORMULA = """\
x1_t = 0.5 sin(2 pi h_t / 24) + u1_t       u1_t = 0.3 u1_{t-1} + 0.954 e1_t
x2_t = 0.5 cos(2 pi w_t / 168) + u2_t      u2_t = 0.2 u2_{t-1} + 0.980 e2_t
y_t  = 10 + 0.0005 t                                          (trend)
     + 1.0 sin(2 pi (h_t - 6) / 24)                           (daily)
     + 0.8 sin(2 pi w_t / 168)                                (weekly)
     + 2.0 x1_{t-3} - 1.5 x2_{t-6} + 1.0 x1_{t-3} x2_{t-6}    (planted drivers)
     + n_t                                 n_t = 0.7 n_{t-1} + 0.35 e3_t"""

# Rows generated before `start` so that y's first rows already have their lagged drivers.
# Fixed (not n_steps-dependent) so that a shorter series is a prefix of a longer one.
_WARMUP = 24
_STEP = pd.Timedelta(hours=1)
# Empty, with the DatetimeIndex resolution the generator's own index has.
_NO_ROWS = pd.date_range("2024-01-01", periods=0, freq="h")

# Planted anomalies. Sizes are in units of the stationary sd of y's AR(1) noise: below ~5 sd a
# one-row spike hides in the noise's own tails, far above ~10 sd any detector finds it.
ANOMALY_KINDS = ("spike", "dip", "level_shift")
NOISE_AR, NOISE_SHOCK = 0.7, 0.35  # n_t = NOISE_AR n_{t-1} + NOISE_SHOCK e3_t
NOISE_SD = NOISE_SHOCK / np.sqrt(1 - NOISE_AR**2)
_ANOMALY_SD = (6.0, 10.0)
_SHIFT_ROWS = (24, 72)  # a level shift lasts this many rows (inclusive range)
_ANOMALY_GAP = 48  # rows from one anomaly's last jump to the next one's onset, at least
_ANOMALY_SKIP = 0.05  # leading fraction of the series kept clean

# Planted drift (see the module docstring).
DRIFT_KINDS = ("level", "driver")
Y_SD = 3.15  # sd of y about its trend, measured on 400,000 rows (seeds 0, 1, 2)
DRIFT_X1_COEF = 1.0  # the coefficient of x1_{t-3} after a "driver" drift (2.0 before)


@dataclass(frozen=True)
class PlantedTerm:
    """One term of y's driver component: `coef` times the product of its (feature, lag) cells.

    >>> PlantedTerm(coef=2.0, cells=(("x1", 3),)).evaluate(df)   # 2.0 * x1 shifted by 3 rows
    """

    coef: float
    cells: tuple[tuple[str, int], ...]

    def evaluate(self, df: pd.DataFrame) -> pd.Series:
        value = pd.Series(self.coef, index=df.index, dtype="float64")
        for feature, lag in self.cells:
            value = value * df[feature].shift(lag)
        return value


@dataclass(frozen=True)
class PlantedTruth:
    """What drives the synthetic target, in window terms (lag 1 = newest row of the window).

    `cells` lists the driving (feature, lag) cells, strongest first; `weights` gives each
    cell's linear coefficient; `terms` holds every term, including the interaction, and
    `formula` the whole generating formula as text.

    `anomalies` lists the planted anomalies (empty unless `synthetic(anomalies=N)`), one row
    each, indexed by its first row's "timestamp": `kind` (spike, dip or level_shift),
    `magnitude` (signed, in y's units; added to y on every affected row) and `end`, the last
    affected row (inclusive; equal to the timestamp for spikes and dips).

    `drift` is the planted drift's kind ("level" or "driver", None without one) and
    `drift_at` the position of its first row (0 = the frame's first row); `terms` are the
    drivers before it.

    >>> truth = planted_truth()
    >>> truth.weights
    {('x1', 3): 2.0, ('x2', 6): -1.5}
    """

    target: str
    terms: tuple[PlantedTerm, ...]
    formula: str
    # A DataFrame cannot take part in the generated == (its == is elementwise), see __eq__.
    anomalies: pd.DataFrame = field(
        default_factory=lambda: _anomaly_frame(_NO_ROWS, [], [], _NO_ROWS),
        compare=False,
        repr=False,
    )
    drift: str | None = None
    drift_at: int | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlantedTruth):
            return NotImplemented
        mine = (self.target, self.terms, self.formula, self.drift, self.drift_at)
        theirs = (other.target, other.terms, other.formula, other.drift, other.drift_at)
        return mine == theirs and self.anomalies.equals(other.anomalies)

    @property
    def cells(self) -> tuple[tuple[str, int], ...]:
        """Every driving cell, ordered by the size of its linear coefficient."""
        seen = {cell: abs(self.weights.get(cell, 0.0)) for t in self.terms for cell in t.cells}
        return tuple(sorted(seen, key=lambda cell: -seen[cell]))

    @property
    def weights(self) -> dict[tuple[str, int], float]:
        """Linear coefficient of each cell (the interaction term is in `terms`)."""
        return {t.cells[0]: t.coef for t in self.terms if len(t.cells) == 1}

    @property
    def max_lag(self) -> int:
        return max(lag for t in self.terms for _, lag in t.cells)

    def driver(self, df: pd.DataFrame) -> pd.Series:
        """The planted-driver part of y, recomputed from the frame's x columns.

        The first `max_lag` rows are NaN: their drivers lie before the frame starts.
        """
        total = sum(term.evaluate(df) for term in self.terms)
        return total.rename(f"{self.target}_driver")

    def one_step_mean(self, df: pd.DataFrame) -> pd.Series:
        """The best one-step forecast of y from everything before each row, by the formula:
        trend, seasonality and drivers plus NOISE_AR times the previous row's noise,

            m_t = level_t + driver_t + NOISE_AR (y_{t-1} - level_{t-1} - driver_{t-1}),

        for a frame as synthetic() returned it (its first row is t = 0) without drift. y - m
        is the noise shock alone (sd NOISE_SHOCK) on rows without anomalies: the oracle that
        forecasts and detectors are measured against. The first `max_lag + 1` rows are NaN.
        """
        if self.drift is not None:
            raise ConfigError("one_step_mean knows the drift-free formula only")
        index = pd.DatetimeIndex(df.index)
        expected = _trend_and_seasons(index, np.arange(len(index), dtype=np.float64))
        expected = expected + self.driver(df).to_numpy()
        noise = df[self.target].to_numpy(dtype=np.float64) - expected
        mean = expected + NOISE_AR * np.concatenate([[np.nan], noise[:-1]])
        return pd.Series(mean, index=df.index, name=f"{self.target}_one_step_mean")

    def anomaly_rows(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Boolean mask over `index`: the rows where a planted anomaly makes y jump.

        That is the row of each spike and dip, and for a level shift its onset row and its
        return row (the row after `end`, where y jumps back by the same amount). Why only the
        jumps: an observation-level detector asks whether a row is surprising given the rows
        before it. Inside a shift each row is the previous level plus noise, so a detector that
        adapts to the new level is right to stop flagging; the row after a spike or dip is back
        to normal, while a shift's return is as large a surprise as its onset. Flags a few
        rows late are matched by `precision_recall(..., tolerance=k)` in
        `deepcast.uncertainty.zscore`.

        >>> df, truth = synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
        >>> int(truth.anomaly_rows(df.index).sum())   # 10 onsets + 3 level shifts' returns
        13
        """
        table = self.anomalies
        returns = table["end"][table["kind"] == "level_shift"] + _STEP
        jumps = table.index.append(pd.DatetimeIndex(returns))
        return np.asarray(pd.DatetimeIndex(index).isin(jumps), dtype=bool)


def _anomaly_frame(
    timestamps: pd.DatetimeIndex, kinds: list[str], magnitudes, ends: pd.DatetimeIndex
) -> pd.DataFrame:
    """The `PlantedTruth.anomalies` table, typed the same way whether empty or not."""
    table = pd.DataFrame(
        {
            "kind": pd.Series(kinds, dtype="str"),
            "magnitude": pd.Series(magnitudes, dtype="float64"),
            "end": pd.Series(ends),
        }
    )
    return table.set_axis(timestamps.rename("timestamp"))


def planted_truth() -> PlantedTruth:
    """The ground truth behind `synthetic()`; the same for every seed and length.

    >>> planted_truth().cells
    (('x1', 3), ('x2', 6))
    """
    terms = (
        PlantedTerm(coef=2.0, cells=(("x1", 3),)),
        PlantedTerm(coef=-1.5, cells=(("x2", 6),)),
        PlantedTerm(coef=1.0, cells=(("x1", 3), ("x2", 6))),
    )
    return PlantedTruth(target="y", terms=terms, formula=FORMULA)


@overload
def synthetic(
    n_steps: int = ...,
    seed: int = ...,
    start: str | pd.Timestamp = ...,
    return_truth: Literal[False] = ...,
    anomalies: int = ...,
    drift: str | None = ...,
    drift_at: int | None = ...,
) -> pd.DataFrame: ...
@overload
def synthetic(
    n_steps: int = ...,
    seed: int = ...,
    start: str | pd.Timestamp = ...,
    *,
    return_truth: Literal[True],
    anomalies: int = ...,
    drift: str | None = ...,
    drift_at: int | None = ...,
) -> tuple[pd.DataFrame, PlantedTruth]: ...


def synthetic(
    n_steps: int = 4000,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    return_truth: bool = False,
    anomalies: int = 0,
    drift: str | None = None,
    drift_at: int | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, PlantedTruth]:
    """Hourly frame with columns x1, x2, y (float64), indexed by a DatetimeIndex "timestamp".

    Deterministic for a seed; a shorter series is a prefix of a longer one with the same seed
    and start. See the module docstring for the exact formula.

    `anomalies=N` adds N spikes, dips and level shifts to y (see the module docstring), listed
    in `truth.anomalies`; y is otherwise unchanged and x1, x2 are untouched. Their placement
    depends on n_steps, so with anomalies the prefix property holds for the clean series only.
    At most `(n_steps - ceil(0.05 n_steps)) // 120` fit (23 in 3000 rows).

    `drift="level"` or `"driver"` changes y from row `drift_at` on (0 <= drift_at < n_steps;
    see the module docstring); the rows before it are the drift-free series', and
    `truth.drift`, `truth.drift_at` record it.

    >>> df = synthetic(n_steps=1000, seed=3)
    >>> df, truth = synthetic(seed=0, return_truth=True)
    >>> df, truth = synthetic(n_steps=3000, seed=0, anomalies=10, return_truth=True)
    >>> df = synthetic(n_steps=2000, seed=0, drift="driver", drift_at=1000)
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer. Received: n_steps={n_steps!r}")
    fits = _max_anomalies(n_steps)
    if (
        isinstance(anomalies, bool)
        or not isinstance(anomalies, (int, np.integer))
        or not 0 <= anomalies <= fits
    ):
        raise ConfigError(
            f"anomalies must be an integer from 0 to {fits} for n_steps={n_steps} (one per "
            f"{_segment_rows()} rows after the first 5%). Received: anomalies={anomalies!r}"
        )
    _check_drift(drift, drift_at, n_steps)
    try:
        index = pd.date_range(start, periods=n_steps + _WARMUP, freq="h", name="timestamp")
    except (ValueError, TypeError) as err:
        raise ConfigError(f"start must be a date/time. Received: start={start!r}") from err
    index = index - pd.Timedelta(hours=_WARMUP)

    # One (rows, 3) draw: row-major order keeps every prefix of the series seed-stable.
    shocks = np.random.default_rng(seed).standard_normal((len(index), 3))
    t = np.arange(len(index), dtype=np.float64) - _WARMUP
    hour, week_hour = _hours(index)

    x1 = 0.5 * np.sin(2 * np.pi * hour / 24) + _ar1(shocks[:, 0], 0.3, 0.954)
    x2 = 0.5 * np.cos(2 * np.pi * week_hour / 168) + _ar1(shocks[:, 1], 0.2, 0.980)
    frame = pd.DataFrame({"x1": x1, "x2": x2}, index=index)
    truth = planted_truth()
    y = (
        _trend_and_seasons(index, t)
        + truth.driver(frame).to_numpy()
        + _ar1(shocks[:, 2], NOISE_AR, NOISE_SHOCK)
    )
    if drift is not None:
        # Added after the drift-free y is complete: no draw and no earlier row changes.
        y = y + _drift_offsets(frame, drift, int(drift_at) + _WARMUP)
    frame["y"] = y
    frame = frame.iloc[_WARMUP:].astype("float64")
    frame.index.freq = "h"
    if anomalies:
        offsets, table = _plant_anomalies(frame.index, int(anomalies), seed)
        frame["y"] = frame["y"].to_numpy() + offsets
        truth = PlantedTruth(truth.target, truth.terms, truth.formula, anomalies=table)
    if drift is not None:
        truth = replace(truth, drift=drift, drift_at=int(drift_at))
    return (frame, truth) if return_truth else frame


def _check_drift(drift, drift_at, n_steps: int) -> None:
    if drift is None:
        if drift_at is not None:
            raise ConfigError(
                f"drift_at needs a drift kind, one of {DRIFT_KINDS}. Received: drift=None, "
                f"drift_at={drift_at!r}"
            )
        return
    if drift not in DRIFT_KINDS:
        raise ConfigError(f"drift must be None or one of {DRIFT_KINDS}. Received: drift={drift!r}")
    if (
        isinstance(drift_at, bool)
        or not isinstance(drift_at, (int, np.integer))
        or not 0 <= drift_at < n_steps
    ):
        raise ConfigError(
            f"drift_at must be a row position from 0 to {n_steps - 1} (n_steps={n_steps}). "
            f"Received: drift_at={drift_at!r}"
        )


def _drift_offsets(frame: pd.DataFrame, drift: str, first: int) -> np.ndarray:
    """What the drift adds to y on each row of `frame` (warm-up rows included), zero before
    row `first`."""
    after = np.arange(len(frame)) >= first
    if drift == "level":
        change = np.full(len(frame), Y_SD)
    else:  # "driver": (new - old) coefficient times x1_{t-3}
        change = (DRIFT_X1_COEF - 2.0) * frame["x1"].shift(3).to_numpy()
    return np.where(after, change, 0.0)


def _segment_rows() -> int:
    """Rows one anomaly's segment needs: the longest shift plus the gap after its return."""
    return _SHIFT_ROWS[1] + _ANOMALY_GAP


def _max_anomalies(n_steps: int) -> int:
    return (n_steps - int(np.ceil(_ANOMALY_SKIP * n_steps))) // _segment_rows()


def _plant_anomalies(
    index: pd.DatetimeIndex, count: int, seed: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Offsets to add to y (one per row of `index`) and the truth table describing them.

    The rows after the first 5% are cut into `count` equal segments (each at least
    `_segment_rows()` long); each gets one anomaly at a random onset chosen so that its last
    jump is at least `_ANOMALY_GAP` rows before the next segment starts.
    """
    # A stream of its own: the clean series' draws, and so every existing seed, are untouched.
    rng = np.random.default_rng((seed, 1))
    kinds = rng.permutation(np.resize(np.array(ANOMALY_KINDS, dtype=object), count))
    sizes = rng.uniform(*_ANOMALY_SD, size=count) * NOISE_SD
    shift_signs = rng.choice([-1.0, 1.0], size=count)
    signs = np.select([kinds == "spike", kinds == "dip"], [1.0, -1.0], shift_signs)
    lengths = np.where(
        kinds == "level_shift", rng.integers(_SHIFT_ROWS[0], _SHIFT_ROWS[1] + 1, size=count), 1
    )
    first = int(np.ceil(_ANOMALY_SKIP * len(index)))
    edges = first + (np.arange(count + 1) * (len(index) - first)) // count
    # A shift's last jump is its return row (onset + length); a spike's is its own row.
    last_jump = np.where(kinds == "level_shift", lengths, 0)
    room = edges[1:] - edges[:-1] - _ANOMALY_GAP - last_jump  # >= 0 by _max_anomalies
    onsets = edges[:-1] + rng.integers(0, room + 1)

    offsets = np.zeros(len(index))
    for onset, length, size in zip(onsets, lengths, signs * sizes):
        offsets[onset : onset + length] += size
    table = _anomaly_frame(
        index[onsets], kinds.tolist(), signs * sizes, index[onsets + lengths - 1]
    )
    return offsets, table


def _hours(index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (0..24) and hour of week (0..168, Monday 00:00 = 0) of every row."""
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60
    return hour, index.day_of_week.to_numpy() * 24 + hour


def _trend_and_seasons(index: pd.DatetimeIndex, t: np.ndarray) -> np.ndarray:
    """y's trend, daily and weekly terms (FORMULA) at rows `index`, t hours after `start`."""
    hour, week_hour = _hours(index)
    return (
        10
        + 0.0005 * t
        + 1.0 * np.sin(2 * np.pi * (hour - 6) / 24)
        + 0.8 * np.sin(2 * np.pi * week_hour / 168)
    )


def _ar1(shocks: np.ndarray, phi: float, scale: float) -> np.ndarray:
    """AR(1) path a_t = phi a_{t-1} + scale e_t, started from its stationary distribution
    so the first rows are not quieter than the rest."""
    out = np.empty_like(shocks)
    out[0] = scale / np.sqrt(1 - phi**2) * shocks[0]
    for i in range(1, len(shocks)):
        out[i] = phi * out[i - 1] + scale * shocks[i]
    return out
