"""From a raw frame to one a Forecaster can take: resample, report gaps, fill, validate.

The order matters: resampling first (a half-hourly file forecast hourly), then the gap report
on the final grid, then filling only when asked, then validation, whose errors name `source`.

>>> df = dc.datasets.load("vic_elec")
>>> hourly = prepare(df, "demand", resample="1h")          # logs gaps, if any
>>> pm = prepare(dc.datasets.load("beijing_pm25"), "pm25", fill=True)
"""

from __future__ import annotations

import logging

import pandas as pd

from deepcast.data.regularity import (
    fill_flags,
    fill_missing_timestamps,
    gap_report,
    infer_frequency,
)
from deepcast.data.regularity import (
    resample as resample_frame,
)
from deepcast.data.validation import check_timestamps, validate_frame

logger = logging.getLogger(__name__)


def prepare(
    df: pd.DataFrame,
    target: str,
    features: list[str] | None = None,
    *,
    resample: str | None = None,
    how: str = "mean",
    fill: bool | str = False,
    source: str = "data",
) -> pd.DataFrame:
    """Validate `df` for forecasting `target`: columns [target, *features] (numbers as
    float64, categorical columns kept as categories), sorted by time.

    `resample` aggregates to a coarser step first (`how`: mean, sum, min, max, first, last).
    Gaps (missing timestamps, runs of missing values) are logged with count, longest run and
    where. `fill=True` ("interpolate") inserts missing timestamps and interpolates missing
    values in time; `fill="forward"` carries the last value forward instead, which uses no
    later row (so a backtest fold never borrows from its test block). Flags and categories
    are always carried forward. Without fill, missing values are an error and missing
    timestamps only a warning (the rows either side of a gap are then treated as neighbours).
    """
    check_timestamps(df, source)  # before resampling or filling, which assume valid timestamps
    if resample is not None:
        before = len(df)
        df = resample_frame(df, resample, how=how, source=source)
        logger.info(
            "%s: resampled %d rows to %d at step %s (%s)", source, before, len(df), resample, how
        )
    columns = [target, *features] if features is not None else list(df.columns)
    columns = [c for c in columns if c in df.columns]
    freq = resample or infer_frequency(df.index)
    if freq is None:
        if len(df) >= 3:
            logger.warning("%s: timestamps have no regular step; no gap report", source)
    else:
        report = gap_report(df[columns], freq, source=source)
        # Without fill, missing values are an error that says the same: no warning first.
        for line in report.lines(values=fill):
            logger.warning("%s: %s", source, line)
        if fill and report.missing_timestamps.count:
            df = fill_missing_timestamps(df, freq, source=source)
    if fill:
        df = fill_flags(df)  # empty resampling bins of a flag or category
    out = validate_frame(df, target, features, source=source, fill=fill, categorical=True)
    # Recorded by `Forecaster.fit` and saved with the model (deepcast/preparation.py).
    out.attrs["deepcast.preparation"] = {"resample": resample, "how": how, "fill": fill}
    return out
