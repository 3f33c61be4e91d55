"""Checking posted observations before they join a model's history in the database.

Rolling inference forecasts from the newest stored rows, so the history must stay a clean
series: every row names the model's columns and nothing else, every value is a number (or
its flag/category), and new rows continue the series at the model's step with no gap. A row
sent again is idempotent (the same data changes nothing). Each problem is a `DataError` with
one line naming the row and column, which the service returns as a 422.

>>> rows = checked_rows(served, [{"timestamp": "2024-01-08 00:00", "y": 1.2, "x1": 0.3}],
...                     last=db.last_timestamp("demand"), stored=stored_lookup)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pandas as pd

from deepcast.errors import DataError
from deepcast.serving.runtime import ServedModel


def checked_rows(
    served: ServedModel,
    records: list[dict],
    last: int | None,
    stored: Callable[[list[int]], set[int]],
) -> list[tuple[int, str, str]]:
    """(ts_ns, ISO timestamp, data JSON) per record, oldest first. `last` is the newest stored
    timestamp (ns) and `stored(ts_list)` says which of them are stored."""
    if not records:
        raise DataError("observations: no rows")
    kinds = served.forecaster.preparation_.columns or {c: "number" for c in served.columns}
    time_key = _time_key(served, records[0])
    rows = []
    for row, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"observations row {row}: not an object of column: value pairs")
        unknown = [k for k in record if k != time_key and k not in served.columns]
        if unknown:
            raise DataError(
                f"observations row {row}: unknown column '{unknown[0]}'; model "
                f"{served.name} reads {time_key}, {', '.join(served.columns)}"
            )
        if time_key not in record:
            raise DataError(f"observations row {row}: no '{time_key}'")
        stamp = _timestamp(served, record[time_key], row)
        data = {
            column: _value(record, column, kinds.get(column, "number"), row)
            for column in served.columns
        }
        rows.append((stamp, data, row))
    rows.sort(key=lambda r: r[0].value)
    for (a, _, row_a), (b, _, row_b) in zip(rows, rows[1:]):
        if a == b:
            raise DataError(f"observations rows {row_a} and {row_b}: same timestamp {a}")
    _check_continuity(served, rows, last, stored)
    return [
        (stamp.value, stamp.isoformat(), json.dumps(data, allow_nan=False))
        for stamp, data, _ in rows
    ]


def _time_key(served: ServedModel, first) -> str:
    own = served.forecaster.preparation_.time_col
    if isinstance(first, dict) and own and own in first:
        return own
    return "timestamp"


def _timestamp(served: ServedModel, value, row: int) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value) if isinstance(value, str) else None
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise DataError(f"observations row {row}: cannot parse {value!r} as a timestamp")
    tz = served.forecaster.preparation_.tz
    if tz is not None:
        stamp = stamp.tz_localize(tz) if stamp.tz is None else stamp.tz_convert(tz)
    elif stamp.tz is not None:
        raise DataError(
            f"observations row {row}: timestamp {value!r} has a time zone; "
            f"model {served.name} was trained on timestamps without one"
        )
    return stamp


def _value(record: dict, column: str, kind: str, row: int):
    if column not in record:
        raise DataError(f"observations row {row}: column '{column}' is missing")
    value = record[column]
    if kind == "category":
        if not isinstance(value, str):
            raise DataError(f"observations row {row}, column '{column}': expected text")
        return value
    if kind == "bool" and isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"observations row {row}, column '{column}': {value!r} is not a number")
    if not math.isfinite(value):
        raise DataError(f"observations row {row}, column '{column}': {value!r} is not finite")
    return float(value)


def _check_continuity(served: ServedModel, rows: list, last: int | None, stored) -> None:
    """New rows continue the series at the model's step; older rows must be stored ones."""
    step = served.step
    older = [(stamp, row) for stamp, _, row in rows if last is not None and stamp.value <= last]
    if older:
        known = stored([stamp.value for stamp, _ in older])
        for stamp, row in older:
            if stamp.value not in known:
                raise DataError(
                    f"observations row {row}: {stamp} is older than the newest stored "
                    f"observation and not one of them; the series cannot be changed in a gap"
                )
    newer = [(stamp, row) for stamp, _, row in rows if last is None or stamp.value > last]
    if step is None or not newer:
        return
    previous = None if last is None else pd.Timestamp(last, tz="UTC")
    for stamp, row in newer:
        if previous is not None:
            expected = previous.tz_convert(stamp.tz) if stamp.tz else previous.tz_localize(None)
            expected = expected + step
            if stamp != expected:
                raise DataError(
                    f"observations row {row}: gap in the series: expected {expected} after "
                    f"{expected - step}, got {stamp} (step {step.freqstr})"
                )
        previous = stamp if stamp.tz else stamp.tz_localize("UTC")
