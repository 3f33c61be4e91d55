"""Frequency inference, gap reports, resampling and filling on small crafted series whose
answers are known exactly."""

import logging

import numpy as np
import pandas as pd
import pytest

from deepcast.data.prepare import prepare
from deepcast.data.regularity import (
    fill_missing_timestamps,
    gap_report,
    infer_frequency,
    resample,
)
from deepcast.errors import ConfigError, DataError


def hourly(n=12, drop=(), start="2024-01-01"):
    index = pd.date_range(start, periods=n, freq="h", name="timestamp").delete(list(drop))
    return pd.DataFrame({"y": np.arange(len(index), dtype=float)}, index=index)


@pytest.mark.parametrize(
    "index, expected",
    [
        (pd.date_range("2024-01-01", periods=10, freq="30min"), "30min"),
        (pd.date_range("2024-01-01", periods=10, freq="h").delete([3, 4]), "h"),
        (pd.date_range("2024-01-01", periods=30, freq="D").delete([7]), "D"),
        # Trading days with a holiday (Mon 2024-01-15) missing.
        (pd.bdate_range("2024-01-01", periods=20).delete([10]), "B"),
        (pd.date_range("2020-01-01", periods=24, freq="MS").delete([5]), "MS"),
        (pd.DatetimeIndex(["2024-01-01", "2024-01-02"]), None),
    ],
)
def test_infer_frequency(index, expected):
    assert infer_frequency(index) == expected


def test_gap_report_counts_runs_and_where_exactly():
    df = hourly(12, drop=[3, 4, 8])  # missing 03:00, 04:00 and 08:00
    df.loc["2024-01-01 01:00":"2024-01-01 02:00", "y"] = np.nan
    df.loc["2024-01-01 10:00", "y"] = np.nan
    report = gap_report(df)
    assert report.frequency == "h"
    assert (report.rows, report.expected_rows) == (9, 12)
    gaps = report.missing_timestamps
    assert (gaps.count, gaps.runs, gaps.longest.length) == (3, 2, 2)
    assert gaps.longest.start == pd.Timestamp("2024-01-01 03:00")
    assert gaps.longest.end == pd.Timestamp("2024-01-01 04:00")
    assert [r.start.hour for r in gaps.first] == [3, 8]
    values = report.missing_values["y"]
    assert (values.count, values.runs, values.longest.length) == (3, 2, 2)
    assert values.longest.start == pd.Timestamp("2024-01-01 01:00")
    assert report.lines() == [
        "missing timestamps at step h: 3 in 2 runs; longest 2 from 2024-01-01 03:00:00 to "
        "2024-01-01 04:00:00",
        "column 'y' missing values: 3 in 2 runs; longest 2 from 2024-01-01 01:00:00 to "
        "2024-01-01 02:00:00",
    ]
    assert not report.complete


def test_gap_report_of_a_complete_series_and_off_grid_rows():
    assert gap_report(hourly(6)).complete and gap_report(hourly(6)).lines() == []
    extra = pd.DataFrame({"y": [9.0]}, index=pd.DatetimeIndex(["2024-01-01 02:30"]))
    report = gap_report(pd.concat([hourly(6), extra]).sort_index(), "h")
    assert report.off_grid == 1 and report.missing_timestamps.count == 0
    assert report.lines() == ["1 timestamps off the h grid"]


def test_resample_mean_sum_bool_and_category_exactly():
    index = pd.date_range("2024-01-01", periods=6, freq="30min")
    df = pd.DataFrame(
        {
            "load": [1.0, 3.0, 5.0, 7.0, np.nan, np.nan],
            "holiday": [False, True, False, False, False, False],
            "wind": pd.Categorical(["N", "S", "S", "N", "N", "N"]),
        },
        index=index,
    )
    out = resample(df, "1h")
    assert out.index.freqstr == "h" and len(out) == 3
    assert out["load"].tolist()[:2] == [2.0, 6.0] and np.isnan(out["load"].iloc[2])
    assert out["holiday"].tolist() == [1.0, 0.0, 0.0]
    three_rows = resample(df, "90min")  # a bin of three rows has a clear majority
    assert three_rows["wind"].tolist() == ["S", "N"]
    summed = resample(df, "1h", how="sum")
    # An hour whose values are all missing stays missing (not a sum of 0).
    assert summed["load"].tolist()[:2] == [4.0, 12.0] and np.isnan(summed["load"].iloc[2])


def test_resample_refuses_to_invent_rows_and_bad_rules():
    with pytest.raises(ConfigError, match="finer than the data's step h"):
        resample(hourly(), "30min")
    with pytest.raises(ConfigError, match="not a time step"):
        resample(hourly(), "fortnightly")
    with pytest.raises(ConfigError, match="unknown aggregation 'median'"):
        resample(hourly(), "2h", how="median")


def test_fill_inserts_missing_timestamps_and_interpolates_in_time(caplog):
    df = hourly(8, drop=[2, 3])  # y = 0, 1, [gap], 2, 3, 4, 5 at hours 0, 1, 4, 5, 6, 7
    filled = fill_missing_timestamps(df)
    assert len(filled) == 8 and filled["y"].isna().sum() == 2
    with caplog.at_level(logging.WARNING):
        clean = prepare(df, "y", fill=True, source="crafted.csv")
    # Time interpolation between 1 at 01:00 and 2 at 04:00.
    np.testing.assert_allclose(clean["y"].to_numpy()[:5], [0, 1, 4 / 3, 5 / 3, 2])
    assert "crafted.csv: missing timestamps at step h: 2 in 1 run; longest 2" in caplog.text


def test_without_fill_missing_values_are_one_error_with_the_longest_run():
    df = hourly(10)
    df.iloc[[2, 3, 4, 7], 0] = np.nan
    with pytest.raises(DataError) as err:
        prepare(df, "y", source="crafted.csv")
    assert str(err.value) == (
        "crafted.csv: column 'y' has 4 missing or infinite values in 2 runs (first at row 3, "
        "2024-01-01 02:00:00: nan; longest 3 rows from 2024-01-01 02:00:00); pass --fill "
        "(fill=True) to interpolate them"
    )


def test_without_fill_missing_timestamps_are_reported_not_changed(caplog):
    df = hourly(10, drop=[5])
    with caplog.at_level(logging.WARNING):
        clean = prepare(df, "y", source="crafted.csv")
    assert len(clean) == 9
    assert "missing timestamps at step h: 1 in 1 run" in caplog.text


def test_duplicate_timestamps_are_refused_before_filling():
    df = hourly(6, drop=[3])
    df = pd.concat([df, df.iloc[[1]]]).sort_index()
    with pytest.raises(DataError, match="duplicate timestamp 2024-01-01 01:00:00"):
        prepare(df, "y", fill=True, resample="2h", source="crafted.csv")


def test_upsampling_daily_or_trading_day_data_is_refused():
    daily = pd.DataFrame(
        {"y": np.arange(10.0)}, index=pd.date_range("2024-01-01", periods=10, freq="D")
    )
    with pytest.raises(ConfigError, match="finer than the data's step D"):
        resample(daily, "h")
    trading = pd.DataFrame({"y": np.arange(10.0)}, index=pd.bdate_range("2024-01-01", periods=10))
    with pytest.raises(ConfigError, match="finer than the data's step B"):
        resample(trading, "6h")
    assert len(resample(daily, "W")) == 2  # coarser is fine


def test_fill_carries_flags_and_categories_forward_never_to_fractions():
    df = hourly(6, drop=[2, 3])
    df["holiday"] = [True, True, False, False]
    df["wind"] = pd.Categorical(["N", "S", "N", "N"])
    clean = prepare(df, "y", fill=True, source="crafted.csv")
    assert clean["holiday"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert clean["wind"].tolist() == ["N", "S", "S", "S", "N", "N"]
    # An empty bin after resampling: the flag also keeps its last state.
    bins = prepare(df, "y", resample="2h", fill=True, source="crafted.csv")
    assert bins["holiday"].tolist() == [1.0, 1.0, 0.0]


def test_forward_fill_uses_no_later_row():
    df = hourly(8)
    df.iloc[3:5, 0] = np.nan  # y = 0, 1, 2, nan, nan, 5, 6, 7
    forward = prepare(df, "y", fill="forward", source="crafted.csv")
    assert forward["y"].tolist() == [0, 1, 2, 2, 2, 5, 6, 7]
    interpolated = prepare(df, "y", fill=True, source="crafted.csv")
    assert interpolated["y"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ConfigError, match="fill must be True, False or one of interpolate"):
        prepare(df, "y", fill="spline")


def test_tz_aware_series_keep_their_local_grid():
    index = pd.date_range("2024-04-06 22:00", periods=8, freq="h", tz="Australia/Melbourne")
    df = pd.DataFrame({"y": np.arange(8.0)}, index=index).drop(index[4])
    report = gap_report(df)
    # Daylight saving ended at 03:00 on 2024-04-07: the hourly grid counts real hours.
    assert report.frequency == "h" and report.missing_timestamps.count == 1
    assert report.missing_timestamps.longest.start == index[4]
    # Two-hour bins are two real hours each, also across the repeated 02:00.
    summed = resample(pd.DataFrame({"y": np.arange(8.0)}, index=index), "2h", how="sum")
    assert summed["y"].tolist() == [1.0, 5.0, 9.0, 13.0]
