"""Reading CSV/Parquet files into time-indexed frames (validation: `deepcast.data.validation`).

Every problem a user can cause is a `DataError` with one line that names the file (or the
`source` given), and the column and row where that applies. Rows are counted 1-based over the
data rows as they appear in the file or frame (the CSV header is not counted).

>>> df = load_frame("energy.csv", target="load")   # read, find the time column, validate
"""

from __future__ import annotations

import gzip
import io
import logging
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from deepcast.data.prepare import prepare

# Validation lives in its own module; these names stay importable from here.
from deepcast.data.validation import (  # noqa: F401
    check_length,
    check_timestamps,
    validate_frame,
)
from deepcast.errors import DataError

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


# ------------------------------------------------------------------------------------ loading
def load_frame(
    path: str | Path,
    target: str,
    time_col: str | None = None,
    features: list[str] | None = None,
    fill: bool | str = False,
    resample: str | None = None,
    how: str = "mean",
) -> pd.DataFrame:
    """Read a CSV/Parquet file and prepare it (see `deepcast.data.prepare`); errors name the
    file.

    >>> df = load_frame("energy.csv", target="load", features=["temp"], fill=True)
    """
    df = read_table(path, time_col=time_col)
    return prepare(
        df, target, features, resample=resample, how=how, fill=fill, source=Path(path).name
    )
