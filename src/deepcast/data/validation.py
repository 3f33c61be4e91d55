"""Validating frames before they reach a model: columns, numbers, timestamps, missing values.

Every problem a user can cause is a `DataError` with one line that names the `source` (a file
name, "train", ...), and the column and row where that applies. Rows are counted 1-based over
the data rows as they appear in the file or frame.

>>> clean = validate_frame(df, target="y", features=["x1", "x2"], source="train")
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from deepcast.data.encoding import MAX_LEVELS, is_categorical
from deepcast.data.regularity import Gaps
from deepcast.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

FILL_METHODS = ("interpolate", "forward")


def validate_frame(
    df: pd.DataFrame,
    target: str,
    features: list[str] | None = None,
    source: str = "data",
    fill: bool | str = False,
    categorical: bool = False,
) -> pd.DataFrame:
    """A clean float64 frame with columns [target, *features], sorted by its DatetimeIndex.

    `features=None` takes every other numeric column; a text column counts as numeric when
    most of its values are numbers (so a stray "n/a" is reported, not silently dropped), and
    other text columns are skipped with a warning. Booleans become 0/1. With
    `categorical=True`, categorical columns (few distinct text values, or the "category"
    dtype) are kept as pandas categories for a `FeatureEncoder` to one-hot, not skipped.

    Decisions: unsorted timestamps are sorted, with a logged warning naming the first row out
    of order. Duplicate timestamps, text in numeric columns and NaN/inf values are errors;
    with `fill=True` ("interpolate") NaN/inf are instead time-interpolated, with
    `fill="forward"` the last value is carried forward (causal: no later row is used); values
    before the first observation take that first value; a warning gives the count.

    >>> clean = validate_frame(df, target="y", features=["x1", "x2"], source="train")
    """
    _check_index(df, source)
    if len(df) == 0:
        raise DataError(f"{source}: no rows")
    fill = _fill_method(fill)
    categorical_columns = _categorical_columns(df, target, categorical)
    columns = _select_columns(df, target, features, source, categorical_columns)
    frame = pd.DataFrame(
        {
            col: df[col].astype("category")
            if col in categorical_columns
            else _to_float(df[col], col, source, df.index)
            for col in columns
        },
        index=df.index,
    )
    _check_duplicates(frame.index, source)
    frame = _sorted(frame, source)
    return _handle_missing(frame, source, fill)


def check_timestamps(df: pd.DataFrame, source: str = "data") -> None:
    """Raise `DataError` unless the index holds timestamps, none missing, none repeated."""
    _check_index(df, source)
    _check_duplicates(df.index, source)


def _check_index(df: pd.DataFrame, source: str) -> None:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(
            f"{source}: the index must hold timestamps (a DatetimeIndex), got "
            f"{type(df.index).__name__}; set it with df.set_index(...) or pass --time-col"
        )
    missing = df.index.isna()
    if missing.any():
        raise DataError(f"{source}: row {int(np.argmax(missing)) + 1}: missing timestamp")


def _categorical_columns(df: pd.DataFrame, target: str, categorical: bool) -> set:
    if not categorical:
        return set()
    return {
        col
        for col in df.columns
        if col != target
        and not isinstance(df[col], pd.DataFrame)
        and is_categorical(df[col])
        and df[col].nunique() <= MAX_LEVELS
    }


def _select_columns(
    df: pd.DataFrame,
    target: str,
    features: list[str] | None,
    source: str,
    categorical_columns=frozenset(),
) -> list[str]:
    available = ", ".join(map(str, df.columns))
    if target not in df.columns:
        raise DataError(
            f"{source}: target column '{target}' not found; available columns: {available}"
        )
    if features is None:
        features = [
            c
            for c in df.columns
            if c != target and (c in categorical_columns or _is_numeric_like(df[c], c, source))
        ]
    for col in features:
        if col not in df.columns:
            raise DataError(
                f"{source}: feature column '{col}' not found; available columns: {available}"
            )
    # The target's own history is always an input; listing it again is harmless.
    columns = list(dict.fromkeys([target, *features]))
    for col in columns:
        if isinstance(df[col], pd.DataFrame):
            raise DataError(f"{source}: column '{col}' appears more than once")
    return columns


def _is_numeric_like(column: pd.Series | pd.DataFrame, name: str, source: str) -> bool:
    if isinstance(column, pd.DataFrame):  # duplicate names: let the selection report it
        return True
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return True
    present = column.dropna()
    numeric = pd.to_numeric(present, errors="coerce").notna().mean() if len(present) else 0.0
    if numeric >= 0.5:
        return True
    logger.warning("%s: skipping column '%s': it holds text, not numbers", source, name)
    return False


def _to_float(column: pd.Series, name: str, source: str, index: pd.Index) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    # Text (pandas 3 string dtype) or objects such as True/False mixed with blanks: coerce,
    # then a value that was present but is now NaN was not a number.
    numbers = pd.to_numeric(column, errors="coerce")
    bad = (numbers.isna() & column.notna()).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        value = column.iloc[row]
        hint = " (decimal comma?)" if re.fullmatch(r"-?\d+,\d+", str(value).strip()) else ""
        raise DataError(
            f"{source}: column '{name}' row {row + 1} ({index[row]}): {value!r} is not a "
            f"number{hint} ({int(bad.sum())} non-numeric values in total)"
        )
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def _check_duplicates(index: pd.DatetimeIndex, source: str) -> None:
    duplicated = index.duplicated()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise DataError(
            f"{source}: duplicate timestamp {index[row]} at row {row + 1} "
            f"({int(duplicated.sum())} duplicates in total); each timestamp must appear once"
        )


def _sorted(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if frame.index.is_monotonic_increasing:
        return frame
    steps_back = np.flatnonzero(np.diff(frame.index.asi8) < 0)
    row = int(steps_back[0]) + 1
    logger.warning(
        "%s: timestamps are not in order (row %d, %s, comes after %s); sorting them",
        source,
        row + 1,
        frame.index[row],
        frame.index[row - 1],
    )
    return frame.sort_index(kind="stable")


def _fill_method(fill: bool | str | None) -> str | None:
    """False/None -> None; True -> "interpolate"; or one of FILL_METHODS by name."""
    if fill is False or fill is None:
        return None
    if fill is True:
        return "interpolate"
    if fill not in FILL_METHODS:
        raise ConfigError(
            f"fill must be True, False or one of {', '.join(FILL_METHODS)}. Received: fill={fill!r}"
        )
    return fill


def _handle_missing(frame: pd.DataFrame, source: str, fill: str | None) -> pd.DataFrame:
    numeric = [c for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if len(numeric) < len(frame.columns):
        # Categories are one-hot encoded later (a missing one is all zeros); numbers only here.
        filled = _handle_missing(frame[numeric], source, fill)
        return frame.assign(**{c: filled[c] for c in numeric})
    bad = ~np.isfinite(frame.to_numpy())
    if not bad.any():
        return frame
    counts = {col: int(n) for col, n in zip(frame.columns, bad.sum(axis=0), strict=True) if n}
    empty = [col for col in counts if counts[col] == len(frame)]
    if empty:
        raise DataError(f"{source}: column '{empty[0]}' has no finite values")
    if not fill:
        col = next(iter(counts))
        j = frame.columns.get_loc(col)
        row = int(np.argmax(bad[:, j]))
        gaps = Gaps.from_mask(bad[:, j], frame.index)
        raise DataError(
            f"{source}: column '{col}' has {counts[col]} missing or infinite values in "
            f"{gaps.runs} run{'s' if gaps.runs != 1 else ''} (first at row {row + 1}, "
            f"{frame.index[row]}: {frame.iloc[row, j]}; longest {gaps.longest.length} rows from "
            f"{gaps.longest.start}); pass --fill (fill=True) to interpolate them"
        )
    detail = ", ".join(f"'{col}': {n}" for col, n in counts.items())
    how = "time interpolation" if fill == "interpolate" else "carrying the last value forward"
    logger.warning(
        "%s: filled %d missing or infinite values by %s (%s)", source, int(bad.sum()), how, detail
    )
    frame = frame.mask(bad)
    if fill == "interpolate":
        frame = frame.interpolate(method="time")
    # Leading values have no past: the first observed value stands in for them.
    return frame.ffill().bfill()


def check_length(
    n_rows: int,
    lookback: int,
    horizon: int,
    source: str = "data",
    *,
    val: float = 0.0,
    test: float = 0.0,
    min_windows: int = 1,
) -> None:
    """Raise `DataError` unless every part of a train/val/test split holds `min_windows`
    windows of `lookback + horizon` rows on its own (parts with fraction 0 are skipped).

    >>> check_length(len(df), lookback=48, horizon=24, source="energy.csv", val=0.15, test=0.15)
    """
    for arg, value in (("lookback", lookback), ("horizon", horizon), ("min_windows", min_windows)):
        if int(value) != value or value < 1:
            raise ConfigError(f"{arg} must be a positive integer. Received: {arg}={value!r}")
    needed = _rows_needed(lookback + horizon + min_windows - 1, val, test)
    if n_rows < needed:
        split = f" and a {val:g}/{test:g} validation/test split" if val or test else ""
        raise DataError(
            f"{source}: {n_rows} rows are too few for lookback {lookback} + horizon {horizon}"
            f"{split}; need at least {needed} rows"
        )


def _rows_needed(per_part: int, val: float, test: float) -> int:
    """Smallest row count whose split gives every non-empty part `per_part` rows."""
    fractions = [f for f in (1 - val - test, val, test) if f > 0]
    # A lower bound: each part is its fraction of n, give or take a rounded row.
    n = max(1, *(int((per_part - 1) / f) for f in fractions))
    while min(_split_sizes(n, val, test)) < per_part:
        n += 1
    return n


def _split_sizes(n: int, val: float, test: float) -> list[int]:
    # Mirrors deepcast.data.windows.split, which rounds the val and test counts.
    n_test, n_val = int(round(n * test)), int(round(n * val))
    sizes = [n - n_val - n_test]
    return sizes + [size for size, f in ((n_val, val), (n_test, test)) if f > 0]
