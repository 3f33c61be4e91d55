"""Turning columns a network cannot read into numbers: one-hot categories and calendar
features. Fitted on the training part only, saved with the forecaster as plain JSON.

Categorical columns (pandas "category" dtype, or text with at most `MAX_LEVELS` distinct
values such as a wind direction) become one 0/1 column per level seen in training, named
"column=level". A level first seen later (or a missing value) is all zeros, with a warning.

Calendar features are sine/cosine pairs of the clock, so 23:00 sits next to 00:00: hour of
day and day of week for sub-daily data, day of week and day of year for daily data, month of
year for weekly and monthly data. They come from the timestamps, so they are known for every
row of a window without any forecasting.

>>> encoder = FeatureEncoder.fit(train, target="pm25", calendar=True)
>>> frame = encoder.transform(test)      # wind_dir=NE, wind_dir=NW, ..., hour_sin, hour_cos, ...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepcast.data.regularity import median_spacing
from deepcast.errors import DataError, ModelFileError

logger = logging.getLogger(__name__)

MAX_LEVELS = 32
_DAY = pd.Timedelta(days=1)

# name -> (the calendar value, its period); a feature becomes name_sin and name_cos.
_CALENDAR = {
    "hour": (lambda ix: ix.hour + ix.minute / 60, 24.0),
    "dow": (lambda ix: ix.day_of_week, 7.0),
    "doy": (lambda ix: ix.day_of_year - 1, 365.25),
    "month": (lambda ix: ix.month - 1, 12.0),
}


def calendar_kinds(index: pd.DatetimeIndex) -> tuple[str, ...]:
    """Which calendar features suit the sampling of `index`."""
    spacing = median_spacing(index[:1000]) or _DAY
    if spacing < _DAY:
        return ("hour", "dow")
    if spacing < pd.Timedelta(days=7):
        return ("dow", "doy")
    return ("month",)


def calendar_features(index: pd.DatetimeIndex, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Sine/cosine columns for each kind in `kinds` (see `_CALENDAR`), indexed like `index`."""
    columns = {}
    for kind in kinds:
        value, period = _CALENDAR[kind]
        angle = 2 * np.pi * np.asarray(value(index), dtype=np.float64) / period
        columns[f"{kind}_sin"] = np.sin(angle)
        columns[f"{kind}_cos"] = np.cos(angle)
    return pd.DataFrame(columns, index=index)


def is_categorical(column: pd.Series) -> bool:
    """A "category" column, or text that is mostly not numbers (so a stray "n/a" in a numeric
    column stays an error elsewhere instead of becoming a category)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return True
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return False
    present = column.dropna()
    if len(present) == 0:
        return False
    return pd.to_numeric(present, errors="coerce").notna().mean() < 0.5


@dataclass
class FeatureEncoder:
    """Fitted encoding: the levels of each categorical column and the calendar features."""

    categories: dict[str, list[str]] = field(default_factory=dict)
    calendar: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        target: str,
        features: list[str] | None = None,
        calendar: bool = False,
        source: str = "train",
    ) -> FeatureEncoder:
        """Learn the categories of the (selected) categorical columns of `df`. A text column
        with too many levels to one-hot is skipped when columns are picked automatically and
        an error when named in `features`."""
        if calendar and not isinstance(df.index, pd.DatetimeIndex):
            raise DataError(f"{source}: calendar features need a DatetimeIndex of timestamps")
        named = set(features or [])
        candidates = features if features is not None else list(df.columns)
        categories = {}
        for column in candidates:
            if column == target or column not in df.columns or not is_categorical(df[column]):
                continue
            levels = _levels(df[column])
            if len(levels) > MAX_LEVELS:
                if column in named:
                    raise DataError(
                        f"{source}: column '{column}' has {len(levels)} distinct text values; "
                        f"at most {MAX_LEVELS} can be one-hot encoded"
                    )
                continue  # free text: validate_frame skips it with a warning
            categories[str(column)] = levels
        kinds = calendar_kinds(df.index) if calendar else ()
        return cls(categories, kinds)

    def input_columns(self, features: list[str] | None) -> list[str] | None:
        """`features` as named by the user -> the encoded column names (None stays None: every
        numeric column, which then includes the encoded ones)."""
        if features is None:
            return None
        expanded = []
        for column in features:
            expanded += self._one_hot_names(column) if column in self.categories else [column]
        return expanded + self.calendar_columns()

    def source_columns(self, encoded: list[str]) -> list[str]:
        """Encoded column names -> the data's own columns they come from, in order (calendar
        columns come from the timestamps, not from a column)."""
        calendar = set(self.calendar_columns())
        owner = {name: col for col in self.categories for name in self._one_hot_names(col)}
        columns = [owner.get(name, name) for name in encoded if name not in calendar]
        return list(dict.fromkeys(columns))

    def calendar_columns(self) -> list[str]:
        return [f"{kind}_{part}" for kind in self.calendar for part in ("sin", "cos")]

    def transform(self, df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
        """`df` with each categorical column replaced by its one-hot columns (in place, so the
        column order is kept) and the calendar columns appended."""
        if not self.categories and not self.calendar:
            return df
        parts = []
        for column in df.columns:
            if column in self.categories:
                parts.append(self._one_hot(df[column], source))
            else:
                parts.append(df[[column]])
        if self.calendar:
            if not isinstance(df.index, pd.DatetimeIndex):
                raise DataError(f"{source}: calendar features need a DatetimeIndex")
            parts.append(calendar_features(df.index, self.calendar))
        return pd.concat(parts, axis=1)

    def _one_hot_names(self, column: str) -> list[str]:
        return [f"{column}={level}" for level in self.categories[column]]

    def _one_hot(self, values: pd.Series, source: str) -> pd.DataFrame:
        column = str(values.name)
        levels = self.categories[column]
        text = values.astype("string")
        unknown = text.notna() & ~text.isin(levels)
        missing = text.isna()
        if unknown.any() or missing.any():
            first = values[unknown | missing].iloc[0]
            logger.warning(
                "%s: column '%s': %d values not seen in training and %d missing (first: %r) "
                "are encoded as all zeros",
                source,
                column,
                int(unknown.sum()),
                int(missing.sum()),
                first,
            )
        data = {
            name: (text == level).fillna(False).to_numpy(dtype=np.float64)
            for name, level in zip(self._one_hot_names(column), levels, strict=True)
        }
        return pd.DataFrame(data, index=values.index)

    def to_json(self) -> dict:
        return {"categories": self.categories, "calendar": list(self.calendar)}

    @classmethod
    def from_json(cls, data: dict | None) -> FeatureEncoder:
        if data is None:  # saved before encoders existed: nothing to encode
            return cls()
        try:
            categories = {
                str(k): [str(v) for v in levels] for k, levels in data["categories"].items()
            }
            calendar = tuple(str(kind) for kind in data["calendar"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"corrupt feature encoder state: {exc!r}") from None
        unknown = [kind for kind in calendar if kind not in _CALENDAR]
        if unknown:
            raise ModelFileError(f"corrupt feature encoder state: unknown calendar {unknown}")
        return cls(categories, calendar)


def _levels(column: pd.Series) -> list[str]:
    """The levels that occur in `column` (a category's declared but unseen levels do not:
    they may come from rows the encoder must not learn from)."""
    seen = set(column.dropna().unique())
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(level) for level in column.cat.categories if level in seen]
    return sorted(str(value) for value in seen)
