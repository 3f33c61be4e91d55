"""How a forecaster's training rows were prepared, recorded at fit and replayed on raw rows.

`deepcast run --data file.csv --resample 1h --fill` reads the file, finds its time column,
resamples, fills and validates (`data/io.py`, `data/prepare.py`). A saved model must forecast
from raw rows of that same file, so the choices are kept with it as plain JSON: the time
column, its step and time zone, the resample rule and aggregation, the fill method and the
input columns with their kinds. `Forecaster.predict` then takes records or a frame with a
time column, exactly as they come:

>>> f = dc.Forecaster.load("runs/run/model")
>>> f.predict([{"timestamp": "2024-01-01 00:00", "load": 3.2, "temp": 21.0}, ...])

A frame already indexed by time at the model's step is passed through untouched, so
everything that worked on prepared frames works as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from deepcast.data.encoding import is_categorical
from deepcast.data.io import TIME_NAMES, _parse_times
from deepcast.data.prepare import prepare
from deepcast.data.regularity import infer_frequency, median_spacing
from deepcast.errors import DataError, ModelFileError

# `prepare` leaves its settings on the frame it returns (pandas keeps `attrs` through slices
# and `split`), so `fit` can record them without every caller passing them along.
ATTR = "deepcast.preparation"


@dataclass(frozen=True)
class Preparation:
    """The recorded preparation of a forecaster's data (see the module docstring)."""

    time_col: str | None = None
    step: str | None = None
    tz: str | None = None
    resample: str | None = None
    how: str = "mean"
    fill: bool | str = False
    columns: dict[str, str] = field(default_factory=dict)  # raw column -> number/bool/category

    @classmethod
    def record(cls, data: pd.DataFrame, columns: list[str]) -> Preparation:
        """The preparation of training frame `data` (its `attrs` from `prepare`, else what
        its index says), for the raw `columns` the model reads."""
        settings = dict(data.attrs.get(ATTR) or {})
        index = data.index
        tz = getattr(index, "tz", None)
        kinds = {}
        for column in columns:
            if column not in data.columns:
                continue
            values = data[column]
            if pd.api.types.is_bool_dtype(values):
                kinds[column] = "bool"
            elif is_categorical(values):
                kinds[column] = "category"
            else:
                kinds[column] = "number"
        return cls(
            time_col=None if index.name is None else str(index.name),
            step=settings.get("resample") or infer_frequency(index),
            tz=None if tz is None else str(tz),
            resample=settings.get("resample"),
            how=settings.get("how", "mean"),
            fill=settings.get("fill", False),
            columns=kinds,
        )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> Preparation:
        if data is None:  # saved before preparations were recorded
            return cls()
        try:
            return cls(
                time_col=data.get("time_col"),
                step=data.get("step"),
                tz=data.get("tz"),
                resample=data.get("resample"),
                how=str(data.get("how", "mean")),
                fill=data.get("fill", False),
                columns={str(k): str(v) for k, v in (data.get("columns") or {}).items()},
            )
        except (AttributeError, TypeError) as exc:
            raise ModelFileError(f"corrupt preparation state: {exc!r}") from None

    # -- replaying it on raw rows -----------------------------------------------------------
    def apply(self, data, target: str, features: list[str], source: str = "data") -> pd.DataFrame:
        """Raw rows (records, or a frame with a time column or a finer step) -> a frame
        prepared as the training data was. A frame indexed by time at the model's step is
        returned as it is."""
        records = isinstance(data, (list, tuple))
        if records:
            data = records_frame(data, source)
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"{source}: expected a DataFrame or a list of records")
        if isinstance(data.index, pd.DatetimeIndex) and not self._finer(data.index):
            return data
        if not isinstance(data.index, pd.DatetimeIndex):
            data = self._indexed(data, source, records)
        if self.tz is not None and data.index.tz is not None and str(data.index.tz) != self.tz:
            data = data.tz_convert(self.tz)
        resample = self.resample if self._finer(data.index) else None
        return prepare(
            data, target, features, resample=resample, how=self.how, fill=self.fill, source=source
        )

    def _finer(self, index: pd.DatetimeIndex) -> bool:
        """True when `index` comes at a finer step than the model's (it needs resampling)."""
        if self.resample is None or len(index) < 2:
            return False
        spacing = median_spacing(index)
        start = index[0]
        step = pd.tseries.frequencies.to_offset(self.resample)
        return spacing is not None and spacing < (start + step) - start

    def _indexed(self, df: pd.DataFrame, source: str, records: bool) -> pd.DataFrame:
        """`df` indexed by its parsed time column: the recorded one, else one named
        timestamp/time/date/datetime."""
        candidates = [self.time_col] if self.time_col else []
        candidates += [c for c in df.columns if str(c).strip().lower() in TIME_NAMES]
        column = next((c for c in candidates if c in df.columns), None)
        if column is None:
            wanted = self.time_col or "timestamp"
            index = "" if records else " and the index does not hold timestamps (a DatetimeIndex)"
            raise DataError(
                f"{source}: no time column '{wanted}'{index}; columns are: "
                f"{', '.join(map(str, df.columns))}"
            )
        df = df.copy()
        df[column] = _parse_times(df[column], source, str(column))
        return df.set_index(column)


def records_frame(records, source: str = "data") -> pd.DataFrame:
    """A list of {column: value} records -> a frame (rows as given). DataError naming the
    first record that is not an object."""
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"{source}: row {row} is not an object of column: value pairs")
    if not records:
        raise DataError(f"{source}: no rows")
    return pd.DataFrame.from_records(list(records))


def fingerprint(frame: pd.DataFrame) -> dict:
    """A SHA-256 of the training rows (timestamps, column names, values) with their count and
    span: the same data gives the same fingerprint on any machine."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(np.ascontiguousarray(frame.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype=np.float64)).tobytes())
    return {
        "sha256": digest.hexdigest(),
        "rows": len(frame),
        "start": str(frame.index[0]),
        "end": str(frame.index[-1]),
    }
