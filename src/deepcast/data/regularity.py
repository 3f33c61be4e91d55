"""Is a series regular? Frequency inference, gap reports, resampling and gap filling.

Real files skip timestamps (a logger that was down), hold NaN runs (a sensor that failed) and
come at a finer step than wanted (half-hourly data forecast hourly). This module says which,
where and how long, and changes the data only when asked.

>>> freq = infer_frequency(df.index)                       # "30min", "h", "D", "B", "MS" ...
>>> report = gap_report(df, freq)                          # missing timestamps and NaN runs
>>> hourly = resample(df, "1h", how="mean")
>>> complete = fill_missing_timestamps(df, freq)          # rows inserted as NaN, then filled
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

AGGREGATIONS = ("mean", "sum", "min", "max", "first", "last")
_DAY = pd.Timedelta(days=1)


# ----------------------------------------------------------------------------------- frequency
def infer_frequency(index: pd.DatetimeIndex) -> str | None:
    """The series' regular step as a pandas offset alias, or None if it has none.

    Exact when pandas can infer it from every timestamp; otherwise (gaps) the most common
    spacing decides: daily data that never falls on a weekend is "B" (trading days), a monthly
    spacing whose timestamps all sit on month starts (ends) is "MS" ("ME").

    >>> infer_frequency(pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00",
    ...                                   "2024-01-01 03:00"]))
    'h'
    """
    if len(index) < 3:
        return None
    with warnings.catch_warnings():
        # pandas 3 announces that infer_freq will return an offset; to_offset reads both.
        warnings.filterwarnings("ignore", message="A future version of pandas will return")
        try:
            exact = pd.infer_freq(index)
        except (TypeError, ValueError):
            exact = None
    if exact is not None:
        return pd.tseries.frequencies.to_offset(exact).freqstr
    spacings = pd.Series(index).diff().dropna()
    spacings = spacings[spacings > pd.Timedelta(0)]
    if spacings.empty:
        return None
    step = spacings.mode().iloc[0]
    if step == _DAY and not (index.day_of_week >= 5).any():
        return "B"
    if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        if index.is_month_start.all():
            return "MS"
        if index.is_month_end.all():
            return "ME"
        return None
    if step % _DAY == pd.Timedelta(0):  # pandas would say "24h"; a reader says "D"
        return "D" if step == _DAY else f"{step // _DAY}D"
    return pd.tseries.frequencies.to_offset(step).freqstr


def future_timestamps(index: pd.DatetimeIndex, steps: int, source: str = "data"):
    """The `steps` timestamps after the end of `index`, at its regular step (calendar aware:
    month starts stay month starts). DataError when the step cannot be inferred."""
    freq = _require_frequency(index, None, source)
    return pd.date_range(index[-1], periods=steps + 1, freq=freq, name=index.name)[1:]


def _require_frequency(index: pd.DatetimeIndex, freq: str | None, source: str) -> str:
    freq = freq or infer_frequency(index)
    if freq is None:
        raise DataError(
            f"{source}: cannot infer a regular time step from the timestamps; pass one "
            "explicitly (--resample RULE, e.g. 1h)"
        )
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ConfigError(f"{freq!r} is not a pandas frequency such as 30min, h, D") from None
    return freq


# -------------------------------------------------------------------------------------- gaps
@dataclass(frozen=True)
class Run:
    """A stretch of consecutive missing steps: `length` steps from `start` to `end`."""

    start: pd.Timestamp
    end: pd.Timestamp
    length: int

    def to_dict(self) -> dict:
        return {"start": str(self.start), "end": str(self.end), "length": self.length}


@dataclass(frozen=True)
class Gaps:
    """Missing steps of one kind: how many, in how many runs, the longest run and the first
    few runs (where to look)."""

    count: int = 0
    runs: int = 0
    longest: Run | None = None
    first: tuple[Run, ...] = ()

    @classmethod
    def from_mask(cls, missing: np.ndarray, times: pd.DatetimeIndex, keep: int = 5) -> Gaps:
        missing = np.asarray(missing, dtype=bool)
        if not missing.any():
            return cls()
        # Runs start where the mask switches on and end where it switches off.
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs = [Run(times[a], times[b - 1], int(b - a)) for a, b in zip(starts, stops)]
        longest = max(runs, key=lambda run: run.length)  # the first of equally long runs
        return cls(int(missing.sum()), len(runs), longest, tuple(runs[:keep]))

    def describe(self) -> str:
        if not self.count:
            return "none"
        return (
            f"{self.count} in {self.runs} run{'s' if self.runs != 1 else ''}; longest "
            f"{self.longest.length} from {self.longest.start} to {self.longest.end}"
        )

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "runs": self.runs,
            "longest": self.longest.to_dict() if self.longest else None,
            "first": [run.to_dict() for run in self.first],
        }


@dataclass(frozen=True)
class GapReport:
    """Where a series is incomplete: timestamps missing from its regular grid, timestamps off
    that grid, and runs of missing values per column."""

    frequency: str
    rows: int
    expected_rows: int
    missing_timestamps: Gaps
    off_grid: int
    missing_values: dict[str, Gaps] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not (self.missing_timestamps.count or self.off_grid or self.missing_values)

    def lines(self, values: bool = True) -> list[str]:
        """One line per finding (`values=False`: timestamps only); empty when complete."""
        found = []
        if self.missing_timestamps.count:
            found.append(
                f"missing timestamps at step {self.frequency}: {self.missing_timestamps.describe()}"
            )
        if self.off_grid:
            found.append(f"{self.off_grid} timestamps off the {self.frequency} grid")
        for column, gaps in self.missing_values.items() if values else ():
            found.append(f"column '{column}' missing values: {gaps.describe()}")
        return found

    def to_dict(self) -> dict:
        return {
            "frequency": self.frequency,
            "rows": self.rows,
            "expected_rows": self.expected_rows,
            "missing_timestamps": self.missing_timestamps.to_dict(),
            "off_grid": self.off_grid,
            "missing_values": {c: g.to_dict() for c, g in self.missing_values.items()},
        }


def _grid(index: pd.DatetimeIndex, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(index[0], index[-1], freq=freq, name=index.name)


def gap_report(df: pd.DataFrame, freq: str | None = None, source: str = "data") -> GapReport:
    """Report missing timestamps (against the regular grid of step `freq`, inferred when None)
    and runs of missing values in each column. Changes nothing.

    >>> print("\\n".join(gap_report(df, "h").lines()))
    missing timestamps at step h: 3 in 2 runs; longest 2 from 2024-01-01 05:00 to ...
    """
    index = df.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{source}: the index must hold timestamps (a DatetimeIndex)")
    freq = _require_frequency(index, freq, source)
    df = df.sort_index()  # once, for the grid and every column
    index = df.index
    grid = _grid(index, freq)
    missing = ~grid.isin(index)
    values = {}
    for column, column_missing in df.isna().items():
        if column_missing.any():
            values[str(column)] = Gaps.from_mask(column_missing.to_numpy(), index)
    return GapReport(
        frequency=freq,
        rows=len(index),
        expected_rows=len(grid),
        missing_timestamps=Gaps.from_mask(missing, grid),
        off_grid=int((~index.isin(grid)).sum()),
        missing_values=values,
    )


# -------------------------------------------------------------------------- resample and fill
def resample(df: pd.DataFrame, rule: str, how: str = "mean", source: str = "data") -> pd.DataFrame:
    """Aggregate to a coarser regular step `rule` (e.g. "1h", "D").

    Numeric columns take `how` (mean, sum, min, max, first, last); boolean columns are true if
    any row in the bin is; categorical and text columns take their most frequent value. A bin
    with no rows becomes a row of NaN (reported as missing values, filled only on request).
    Refining the step (upsampling) is refused: it would invent data.

    >>> resample(half_hourly, "1h").index.freqstr
    'h'
    """
    if how not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    try:
        offset = pd.tseries.frequencies.to_offset(rule)
    except ValueError:
        raise ConfigError(
            f"--resample {rule!r} is not a time step such as 30min, 1h, D or W"
        ) from None
    spacing = median_spacing(df.index)
    if spacing is not None and _duration(offset, df.index[0]) < spacing:
        raise ConfigError(
            f"{source}: --resample {rule} is finer than the data's step "
            f"{infer_frequency(df.index) or spacing}; resampling only aggregates (it never "
            "invents rows)"
        )
    bins = df.sort_index().resample(offset)
    columns = {}
    for column in df.columns:
        series = df[column]
        if pd.api.types.is_bool_dtype(series):
            # Empty bins stay missing (nullable boolean) rather than becoming False.
            columns[column] = bins[column].max().where(bins[column].count() > 0).astype("boolean")
        elif pd.api.types.is_numeric_dtype(series):
            agg = bins[column].agg(how) if how != "sum" else bins[column].sum(min_count=1)
            columns[column] = agg
        else:
            columns[column] = bins[column].agg(_most_frequent)
    out = pd.DataFrame(columns)
    out.index.name = df.index.name
    return out


def median_spacing(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The typical step between timestamps (None for fewer than two)."""
    spacings = pd.Series(index.sort_values()).diff().dropna()
    return spacings.median() if len(spacings) else None


def _duration(offset, start: pd.Timestamp) -> pd.Timedelta:
    """How long one step of `offset` lasts from `start`: also for steps pandas does not treat
    as fixed (days under daylight saving, business days, months)."""
    return (start + offset) - start


def _most_frequent(values: pd.Series):
    counts = values.value_counts(sort=True, dropna=True)
    return counts.index[0] if len(counts) else np.nan


def fill_missing_timestamps(
    df: pd.DataFrame, freq: str | None = None, source: str = "data"
) -> pd.DataFrame:
    """Insert the grid's missing timestamps as rows of NaN; `validate_frame(fill=True)` then
    fills the numbers. Boolean and categorical columns carry their last value forward (a flag
    is never interpolated to a fraction). Timestamps off the grid are kept as they are."""
    freq = _require_frequency(df.index, freq, source)
    df = df.sort_index()
    grid = _grid(df.index, freq)
    inserted = grid.difference(df.index)
    if len(inserted) == 0:
        return df
    logger.warning("%s: inserted %d missing timestamps (step %s)", source, len(inserted), freq)
    out = df.reindex(df.index.union(grid))
    return fill_flags(out, df.dtypes)


def fill_flags(df: pd.DataFrame, dtypes: pd.Series | None = None) -> pd.DataFrame:
    """Missing values of boolean and categorical columns (by `dtypes`, default the frame's
    own) carried forward, then backward at the start: the last known state, not a fraction."""
    dtypes = df.dtypes if dtypes is None else dtypes
    out = df.copy()
    for column in out.columns:
        dtype = dtypes[column]
        if pd.api.types.is_bool_dtype(dtype):
            out[column] = out[column].astype("boolean").ffill().bfill()
        elif not pd.api.types.is_numeric_dtype(dtype):
            out[column] = out[column].ffill().bfill()
    return out
