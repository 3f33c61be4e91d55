"""Reading and validating user data: every malformed input gets one clear DataError line."""

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from deepcast.data.io import check_length, load_frame, read_table, validate_frame
from deepcast.errors import ConfigError, DataError

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _frame(n: int = 6, **columns) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="timestamp")
    data = columns or {"y": np.arange(n, dtype=float), "x": np.arange(n, dtype=float) * 2}
    return pd.DataFrame(data, index=index)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- malformed files
def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as err:
        read_table(path)
    assert _one_line(err) == f"{path}: file not found"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty \(0 bytes\)"):
        read_table(path)


def test_blank_file(tmp_path):
    path = _write(tmp_path / "blank.csv", "\n\n  \n")
    with pytest.raises(DataError, match=r"blank\.csv: file has no header and no data"):
        read_table(path)


def test_header_only_file(tmp_path):
    path = _write(tmp_path / "header.csv", "timestamp,y,x\n")
    with pytest.raises(DataError, match=r"header\.csv: has a header but no data rows"):
        read_table(path)


def test_random_bytes_are_not_a_csv(tmp_path):
    path = tmp_path / "noise.csv"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError) as err:
        read_table(path)
    assert _one_line(err) == f"{path}: not a CSV text file (it contains binary data)"


def test_png_renamed_csv(tmp_path):
    path = tmp_path / "image.csv"
    path.write_bytes(PNG_HEADER + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"image\.csv: not a CSV text file"):
        read_table(path)


def test_bad_gzip(tmp_path):
    path = tmp_path / "data.csv.gz"
    path.write_bytes(b"timestamp,y\n2024-01-01,1\n")
    with pytest.raises(DataError, match=r"data\.csv\.gz: not a valid gzip file"):
        read_table(path)


def test_unreadable_parquet(tmp_path):
    path = _write(tmp_path / "data.parquet", "timestamp,y\n2024-01-01,1\n")
    with pytest.raises(DataError, match=r"data\.parquet: not a readable Parquet file \(.+\)"):
        read_table(path)


def test_unsupported_suffix(tmp_path):
    path = _write(tmp_path / "data.xlsx", "x")
    with pytest.raises(DataError, match=r"data\.xlsx: unsupported file type; expected one of"):
        read_table(path)


def test_ragged_csv(tmp_path):
    path = _write(tmp_path / "ragged.csv", "timestamp,y\n2024-01-01,1\n2024-01-02,2,3\n")
    with pytest.raises(DataError, match=r"ragged\.csv: cannot parse as CSV \(.*line 3"):
        read_table(path)


# ------------------------------------------------------------------------------ time column
def test_unparseable_date_names_file_column_row_and_value(tmp_path):
    text = "when,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-13-45 99:00,3\n"
    path = _write(tmp_path / "dates.csv", text)
    with pytest.raises(DataError) as err:
        read_table(path, time_col="when")
    assert _one_line(err) == (
        f"{path}: column 'when' row 3: cannot parse '2024-13-45 99:00' as a date/time "
        "(1 bad in total)"
    )


def test_missing_timestamp(tmp_path):
    path = _write(tmp_path / "gap.csv", "timestamp,y\n2024-01-01,1\n,2\n")
    with pytest.raises(DataError, match=r"gap\.csv: column 'timestamp' row 2: missing timestamp"):
        read_table(path)


def test_time_column_found_by_name_case_insensitive(tmp_path):
    path = _write(tmp_path / "d.csv", "y,Date\n1,2024-01-01\n2,2024-01-02\n")
    df = read_table(path)
    assert df.index.name == "Date"
    assert df.index[1] == pd.Timestamp("2024-01-02")
    assert list(df.columns) == ["y"]


def test_first_column_used_when_it_holds_dates(tmp_path):
    path = _write(tmp_path / "d.csv", "when,y\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n")
    assert read_table(path).index.name == "when"


def test_no_time_column_asks_for_time_col(tmp_path):
    path = _write(tmp_path / "d.csv", "a,y\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"d\.csv: cannot tell which column .* --time-col"):
        read_table(path)


def test_time_col_not_found_lists_columns(tmp_path):
    path = _write(tmp_path / "d.csv", "timestamp,y\n2024-01-01,1\n")
    with pytest.raises(DataError, match=r"time column 'ts' not found; columns are: timestamp, y"):
        read_table(path, time_col="ts")


def test_mixed_iso_precision_parses(tmp_path):
    path = _write(tmp_path / "d.csv", "timestamp,y\n2024-01-01,1\n2024-01-01 01:00:00,2\n")
    assert list(read_table(path).index) == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-01 01:00"),
    ]


def test_daylight_saving_offsets_become_utc(tmp_path):
    text = "timestamp,y\n2024-03-31T01:00:00+01:00,1\n2024-03-31T03:00:00+02:00,2\n"
    df = read_table(_write(tmp_path / "d.csv", text))
    assert df.index[1] - df.index[0] == pd.Timedelta(hours=1)
    assert str(df.index.tz) == "UTC"


def test_semicolon_separated(tmp_path):
    df = read_table(_write(tmp_path / "d.csv", "timestamp;y;x\n2024-01-01;1.5;2\n"))
    assert list(df.columns) == ["y", "x"]
    assert df["y"].iloc[0] == 1.5


def test_latin1_file_is_read_with_a_warning(tmp_path, caplog):
    path = tmp_path / "d.csv"
    path.write_bytes("timestamp,température\n2024-01-01,1\n".encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="deepcast.data.io"):
        df = read_table(path)
    assert list(df.columns) == ["température"]
    assert "not valid UTF-8" in caplog.text


# ------------------------------------------------------------------------------- happy paths
def test_csv_round_trip(tmp_path):
    from deepcast.data.synthetic import synthetic

    original = synthetic(200, seed=1)
    path = tmp_path / "synthetic.csv"
    original.to_csv(path)
    loaded = load_frame(path, target="y")
    assert list(loaded.columns) == ["y", "x1", "x2"]
    assert loaded.index.name == "timestamp"
    pd.testing.assert_frame_equal(loaded, original[["y", "x1", "x2"]], check_freq=False)


def test_csv_gz_round_trip(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"timestamp,y\n2024-01-01,1\n2024-01-02,2\n"))
    assert load_frame(path, target="y")["y"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("as_index", [True, False])
def test_parquet_round_trip(tmp_path, as_index):
    original = _frame(y=[1.0, 2.0, 3.0], flag=[True, False, True], n=3)
    path = tmp_path / "d.parquet"
    (original if as_index else original.reset_index()).to_parquet(path)
    loaded = load_frame(path, target="y")
    assert loaded.index.name == "timestamp"
    pd.testing.assert_index_equal(loaded.index, original.index, exact=False, check_freq=False)
    assert loaded["flag"].tolist() == [1.0, 0.0, 1.0]


def test_pq_suffix(tmp_path):
    path = tmp_path / "d.pq"
    _frame().to_parquet(path)
    assert read_table(path).shape == (6, 2)


# -------------------------------------------------------------------------------- validation
def test_missing_target_lists_available_columns():
    with pytest.raises(DataError) as err:
        validate_frame(_frame(), target="load", features=None, source="f.csv")
    assert _one_line(err) == "f.csv: target column 'load' not found; available columns: y, x"


def test_missing_feature():
    with pytest.raises(DataError, match=r"f\.csv: feature column 'temp' not found"):
        validate_frame(_frame(), target="y", features=["temp"], source="f.csv")


def test_text_in_numeric_column_names_column_row_and_value(tmp_path):
    path = _write(tmp_path / "t.csv", "timestamp,y,x\n2024-01-01,1,2\n2024-01-02,2,oops\n")
    with pytest.raises(DataError) as err:
        load_frame(path, target="y", features=["x"])
    assert _one_line(err) == (
        "t.csv: column 'x' row 2 (2024-01-02 00:00:00): 'oops' is not a number "
        "(1 non-numeric values in total)"
    )


def test_decimal_comma_hint():
    df = _frame(n=2, y=[1.0, 2.0], x=["1,5", "2,5"])
    with pytest.raises(DataError, match=r"'1,5' is not a number \(decimal comma\?\)"):
        validate_frame(df, target="y", features=["x"])


def test_features_none_keeps_numeric_and_reports_stray_text():
    df = _frame(n=3, y=[1.0, 2.0, 3.0], x=["1", "n/a?", "3"], name=["a", "b", "c"])
    with pytest.raises(DataError, match=r"column 'x' row 2 .*'n/a\?' is not a number"):
        validate_frame(df, target="y", features=None)


def test_features_none_skips_text_columns_with_a_warning(caplog):
    df = _frame(n=3, y=[1.0, 2.0, 3.0], x=[4, 5, 6], name=["a", "b", "c"])
    with caplog.at_level(logging.WARNING, logger="deepcast.data.io"):
        out = validate_frame(df, target="y", features=None)
    assert list(out.columns) == ["y", "x"]
    assert (out.dtypes == "float64").all()
    assert "skipping column 'name'" in caplog.text


def test_nan_is_an_error_naming_column_count_and_first_row():
    df = _frame(y=[0.0, 1.0, np.nan, 3.0, np.nan, 5.0])
    with pytest.raises(DataError) as err:
        validate_frame(df, target="y", features=[], source="f.csv")
    assert _one_line(err) == (
        "f.csv: column 'y' has 2 missing or infinite values in 2 runs (first at row 3, "
        "2024-01-01 02:00:00: nan; longest 1 rows from 2024-01-01 02:00:00); pass --fill "
        "(fill=True) to interpolate them"
    )


def test_inf_is_an_error():
    df = _frame(y=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], x=[0.0, -np.inf, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(
        DataError, match=r"column 'x' has 1 missing .* row 2, .*: -inf; longest 1 rows"
    ):
        validate_frame(df, target="y", features=["x"])


def test_fill_interpolates_in_time(caplog):
    # Uneven spacing: 00:00, 01:00, 04:00 -> the NaN at 01:00 lies 1/4 of the way from 0 to 8.
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00"])
    df = pd.DataFrame({"y": [0.0, np.nan, 8.0], "x": [np.inf, 1.0, 2.0]}, index=index)
    with caplog.at_level(logging.WARNING, logger="deepcast.data.io"):
        out = validate_frame(df, target="y", features=["x"], fill=True)
    assert out["y"].tolist() == [0.0, 2.0, 8.0]
    assert out["x"].tolist() == [1.0, 1.0, 2.0]  # leading gap: back-filled
    assert "filled 2 missing or infinite values" in caplog.text


def test_fill_cannot_invent_an_empty_column():
    with pytest.raises(DataError, match=r"column 'x' has no finite values"):
        validate_frame(_frame(n=2, y=[1.0, 2.0], x=[np.nan, np.nan]), "y", ["x"], fill=True)


def test_duplicate_timestamps():
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 01:00"])
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0]}, index=index)
    with pytest.raises(DataError) as err:
        validate_frame(df, target="y", features=[], source="f.csv")
    assert _one_line(err) == (
        "f.csv: duplicate timestamp 2024-01-01 01:00:00 at row 3 (1 duplicates in total); "
        "each timestamp must appear once"
    )


def test_unsorted_timestamps_are_sorted_with_a_warning(caplog):
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 02:00", "2024-01-01 01:00"])
    df = pd.DataFrame({"y": [0.0, 2.0, 1.0]}, index=index)
    with caplog.at_level(logging.WARNING, logger="deepcast.data.io"):
        out = validate_frame(df, target="y", features=[], source="f.csv")
    assert out["y"].tolist() == [0.0, 1.0, 2.0]
    assert out.index.is_monotonic_increasing
    assert "f.csv: timestamps are not in order (row 3, 2024-01-01 01:00:00" in caplog.text


def test_index_must_be_datetime():
    with pytest.raises(DataError, match=r"f\.csv: the index must hold timestamps .*RangeIndex"):
        validate_frame(pd.DataFrame({"y": [1.0]}), target="y", features=[], source="f.csv")


def test_booleans_become_zero_one():
    df = _frame(n=3, y=[1.0, 2.0, 3.0], on=[True, False, True])
    out = validate_frame(df, target="y", features=["on"])
    assert out["on"].dtype == "float64"
    assert out["on"].tolist() == [1.0, 0.0, 1.0]


def test_csv_true_false_with_blank_carries_the_flag_forward_after_fill(tmp_path):
    text = (
        "timestamp,y,on\n2024-01-01 00:00,1,true\n2024-01-01 01:00,2,\n2024-01-01 02:00,3,FALSE\n"
    )
    out = load_frame(_write(tmp_path / "b.csv", text), target="y", fill=True)
    # A flag is carried forward, never interpolated to a fraction.
    assert out["on"].tolist() == [1.0, 1.0, 0.0]


def test_target_listed_as_feature_is_not_duplicated():
    out = validate_frame(_frame(), target="y", features=["x", "y"])
    assert list(out.columns) == ["y", "x"]


def test_validation_does_not_modify_the_input():
    df = _frame(y=[0.0, np.nan, 2.0, 3.0, 4.0, 5.0])
    validate_frame(df, target="y", features=[], fill=True)
    assert np.isnan(df["y"].iloc[1])


def test_load_frame_names_the_file_in_validation_errors(tmp_path):
    path = _write(tmp_path / "energy.csv", "timestamp,y\n2024-01-01,1\n")
    with pytest.raises(DataError, match=r"^energy\.csv: target column 'load' not found"):
        load_frame(path, target="load")


# ------------------------------------------------------------------------------------ length
def test_check_length_says_needed_and_available():
    with pytest.raises(DataError) as err:
        check_length(100, lookback=48, horizon=1, source="f.csv", val=0.15, test=0.15)
    message = _one_line(err)
    assert message.startswith("f.csv: 100 rows are too few for lookback 48 + horizon 1")
    needed = int(message.rsplit("need at least ", 1)[1].split()[0])
    # The stated minimum is exact: it passes, one row fewer fails.
    check_length(needed, 48, 1, val=0.15, test=0.15)
    with pytest.raises(DataError):
        check_length(needed - 1, 48, 1, val=0.15, test=0.15)


def test_check_length_without_split():
    check_length(49, lookback=48, horizon=1)
    with pytest.raises(DataError, match=r"48 rows are too few .*need at least 49 rows"):
        check_length(48, lookback=48, horizon=1)


def test_check_length_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="lookback"):
        check_length(100, lookback=0, horizon=1)
