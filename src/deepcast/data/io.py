"""Reading CSV/Parquet files and validating frames before they reach a model.

Every problem a user can cause is a `DataError` with one line that names the file (or the
`source` given), and the column and row where that applies. Rows are counted 1-based over the
data rows as they appear in the file or frame (the CSV header is not counted).

>>> df = load_frame("energy.csv", target="load")   # read, find the time column, validate
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from deepcast.data.encoding import MAX_LEVELS, is_categorical
from deepcast.data.regularity import Gaps
from deepcast.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TIME_NAMES = ("timestamp", "time", "date", "datetime")
_DELIMITERS = (",", ";", "\t", "|")
# Bytes that never occur in text files; NUL is the classic tell of a binary file.
_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13}) + b"\x7f"


# ----------------------------------------------------------------------------------- reading
def read_table(path: str | Path, time_col: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file and index it by its parsed time column.

    `time_col=None` picks the one column named timestamp/time/date/datetime (any case), else
    the first column if it holds dates. The index keeps the column's name from the file.

    >>> df = read_table("energy.csv")                  # column "date" becomes the index
    >>> df = read_table("plant.parquet", time_col="ts")
    """
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise DataError(f"{label}: file not found")
    if not path.is_file():
        raise DataError(f"{label}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{label}: file is empty (0 bytes)")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        df = _read_parquet(path, label)
    elif name.endswith(CSV_SUFFIXES):
        df = _read_csv(path, label)
    else:
        raise DataError(
            f"{label}: unsupported file type; expected one of "
            f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    if len(df) == 0:
        raise DataError(f"{label}: has a header but no data rows")
    column = _time_column(df, time_col, label)
    df = df.copy()
    df[column] = _parse_times(df[column], label, column)
    return df.set_index(column)


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types (ArrowInvalid, OSError, ...)
        raise DataError(f"{label}: not a readable Parquet file ({_first_line(err)})") from err
    # A frame saved with its time index: make the index a column again, found like any other.
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
    return df


def _read_csv(path: Path, label: str) -> pd.DataFrame:
    text = _read_text(path, label)
    if not text.strip():
        raise DataError(f"{label}: file has no header and no data")
    header = next(line for line in text.splitlines() if line.strip())
    sep = max(_DELIMITERS, key=header.count)
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{label}: cannot parse as CSV ({_first_line(err)})") from err


def _read_text(path: Path, label: str) -> str:
    """The file's text; binary content (an image, random bytes) is refused, not parsed."""
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{label}: not a valid gzip file ({_first_line(err)})") from err
    sample = raw[:65536]
    control = sum(sample.count(bytes([b])) for b in _CONTROL)
    if b"\x00" in sample or control > 0.01 * len(sample):
        raise DataError(f"{label}: not a CSV text file (it contains binary data)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports are often Latin-1/cp1252; numbers and ISO dates read the same.
        logger.warning("%s: not valid UTF-8; reading it as Latin-1", label)
        return raw.decode("latin-1")


def _time_column(df: pd.DataFrame, time_col: str | None, label: str) -> str:
    columns = [str(c) for c in df.columns]
    if time_col is not None:
        if time_col not in df.columns:
            raise DataError(
                f"{label}: time column '{time_col}' not found; columns are: {', '.join(columns)}"
            )
        return time_col
    named = [c for c in df.columns if str(c).strip().lower() in TIME_NAMES]
    if len(named) == 1:
        return named[0]
    first = df.columns[0]
    if _looks_like_dates(df[first]):
        return first
    why = f"several candidates ({', '.join(map(str, named))})" if named else "none is named"
    raise DataError(
        f"{label}: cannot tell which column holds the timestamps ({why}, and the first column "
        f"'{first}' is not dates); pass --time-col (time_col=) to name it"
    )


def _looks_like_dates(column: pd.Series) -> bool:
    # Numbers would "parse" as nanoseconds since 1970; only text or datetimes count as dates.
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if pd.api.types.is_numeric_dtype(column) or column.isna().all():
        return False
    # A sample decides; a bad value further down is then reported by row when parsing.
    sample = column.head(1000)
    return not _to_datetime(sample).isna().any()


def _parse_times(column: pd.Series, label: str, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        # Years or yyyymmdd stored as integers parse as text, not as epoch nanoseconds.
        text = column.astype("str").where(column.notna())
        parsed = _to_datetime(text if pd.api.types.is_numeric_dtype(column) else column)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        value = column.iloc[row]
        what = "missing timestamp" if pd.isna(value) else f"cannot parse {value!r} as a date/time"
        raise DataError(
            f"{label}: column '{name}' row {row + 1}: {what} ({int(bad.sum())} bad in total)"
        )
    return parsed


def _to_datetime(column: pd.Series) -> pd.Series:
    """Parse with one inferred format (fast), falling back to per-value parsing for files
    that mix formats such as "2024-01-01" and "2024-01-01 01:00:00"."""
    parsed = _to_datetime_once(column, None)
    if parsed.isna().any():
        mixed = _to_datetime_once(column, "mixed")
        if mixed.isna().sum() < parsed.isna().sum():
            parsed = mixed
    return parsed


def _to_datetime_once(column: pd.Series, fmt: str | None) -> pd.Series:
    # pandas warns when it falls back to per-value parsing; the bad rows are reported instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(column, errors="coerce", format=fmt)
        except (ValueError, TypeError):
            # Offsets that change with daylight saving: one common clock (UTC) is the choice.
            return pd.to_datetime(column, errors="coerce", format=fmt, utc=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


# -------------------------------------------------------------------------------- validation
def validate_frame(
    df: pd.DataFrame,
    target: str,
    features: list[str] | None = None,
    source: str = "data",
    fill: bool = False,
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
    with `fill=True`, NaN/inf are instead time-interpolated (then forward/back filled at the
    ends) and a warning gives the count.

    >>> clean = validate_frame(df, target="y", features=["x1", "x2"], source="train")
    """
    _check_index(df, source)
    if len(df) == 0:
        raise DataError(f"{source}: no rows")
    kept = _categorical_columns(df, target, categorical)
    columns = _select_columns(df, target, features, source, kept)
    frame = pd.DataFrame(
        {
            col: df[col].astype("category")
            if col in kept
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
    df: pd.DataFrame, target: str, features: list[str] | None, source: str, kept: set = frozenset()
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
            if c != target and (c in kept or _is_numeric_like(df[c], c, source))
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


def _handle_missing(frame: pd.DataFrame, source: str, fill: bool) -> pd.DataFrame:
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
    logger.warning(
        "%s: filled %d missing or infinite values by time interpolation (%s)",
        source,
        int(bad.sum()),
        detail,
    )
    frame = frame.mask(bad)
    return frame.interpolate(method="time").ffill().bfill()


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


# ------------------------------------------------------------------------------------ loading
def load_frame(
    path: str | Path,
    target: str,
    time_col: str | None = None,
    features: list[str] | None = None,
    fill: bool = False,
    resample: str | None = None,
    how: str = "mean",
) -> pd.DataFrame:
    """Read a CSV/Parquet file and prepare it (see `deepcast.data.prepare`); errors name the
    file.

    >>> df = load_frame("energy.csv", target="load", features=["temp"], fill=True)
    """
    from deepcast.data.prepare import prepare

    df = read_table(path, time_col=time_col)
    return prepare(
        df, target, features, resample=resample, how=how, fill=fill, source=Path(path).name
    )
