"""Synthetic hourly series with planted ground truth, for tests, demos and explanation checks.

The target `y` is driven by two known cells of the input window — `x1` three hours back and
`x2` six hours back — plus their product, on top of a trend, daily and weekly seasonality and
autocorrelated noise. A model that reads the window should beat seasonal-naive forecasts by
far, and an attribution method should rank the planted cells first.

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

>>> df, truth = synthetic(n_steps=500, seed=0, return_truth=True)
>>> truth.cells
(('x1', 3), ('x2', 6))
"""

from __future__ import annotations

from dataclasses import dataclass
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

    >>> truth = planted_truth()
    >>> truth.weights
    {('x1', 3): 2.0, ('x2', 6): -1.5}
    """

    target: str
    terms: tuple[PlantedTerm, ...]
    formula: str

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
) -> pd.DataFrame: ...
@overload
def synthetic(
    n_steps: int = ...,
    seed: int = ...,
    start: str | pd.Timestamp = ...,
    *,
    return_truth: Literal[True],
) -> tuple[pd.DataFrame, PlantedTruth]: ...


def synthetic(
    n_steps: int = 4000,
    seed: int = 0,
    start: str | pd.Timestamp = "2024-01-01",
    return_truth: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, PlantedTruth]:
    """Hourly frame with columns x1, x2, y (float64), indexed by a DatetimeIndex "timestamp".

    Deterministic for a seed; a shorter series is a prefix of a longer one with the same seed
    and start. See the module docstring for the exact formula.

    >>> df = synthetic(n_steps=1000, seed=3)
    >>> df, truth = synthetic(seed=0, return_truth=True)
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer. Received: n_steps={n_steps!r}")
    try:
        index = pd.date_range(start, periods=n_steps + _WARMUP, freq="h", name="timestamp")
    except (ValueError, TypeError) as err:
        raise ConfigError(f"start must be a date/time. Received: start={start!r}") from err
    index = index - pd.Timedelta(hours=_WARMUP)

    # One (rows, 3) draw: row-major order keeps every prefix of the series seed-stable.
    shocks = np.random.default_rng(seed).standard_normal((len(index), 3))
    t = np.arange(len(index), dtype=np.float64) - _WARMUP
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60
    week_hour = index.day_of_week.to_numpy() * 24 + hour

    x1 = 0.5 * np.sin(2 * np.pi * hour / 24) + _ar1(shocks[:, 0], 0.3, 0.954)
    x2 = 0.5 * np.cos(2 * np.pi * week_hour / 168) + _ar1(shocks[:, 1], 0.2, 0.980)
    frame = pd.DataFrame({"x1": x1, "x2": x2}, index=index)
    truth = planted_truth()
    y = (
        10
        + 0.0005 * t
        + 1.0 * np.sin(2 * np.pi * (hour - 6) / 24)
        + 0.8 * np.sin(2 * np.pi * week_hour / 168)
        + truth.driver(frame).to_numpy()
        + _ar1(shocks[:, 2], 0.7, 0.35)
    )
    frame["y"] = y
    frame = frame.iloc[_WARMUP:].astype("float64")
    frame.index.freq = "h"
    return (frame, truth) if return_truth else frame


def _ar1(shocks: np.ndarray, phi: float, scale: float) -> np.ndarray:
    """AR(1) path a_t = phi a_{t-1} + scale e_t, started from its stationary distribution
    so the first rows are not quieter than the rest."""
    out = np.empty_like(shocks)
    out[0] = scale / np.sqrt(1 - phi**2) * shocks[0]
    for i in range(1, len(shocks)):
        out[i] = phi * out[i - 1] + scale * shocks[i]
    return out
