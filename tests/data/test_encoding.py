"""One-hot categories and calendar features: exact values, fitted on train only, saved with
the forecaster."""

import logging

import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast.data.encoding import MAX_LEVELS, FeatureEncoder, calendar_features, calendar_kinds
from deepcast.errors import DataError


def frame(n=8, wind=("N", "S", "N", "E", "S", "N", "E", "N")):
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="timestamp")
    return pd.DataFrame(
        {"y": np.arange(n, dtype=float), "wind": pd.Categorical(list(wind)[:n])}, index=index
    )


def test_one_hot_columns_in_place_with_training_levels():
    encoder = FeatureEncoder.fit(frame(), target="y")
    assert encoder.categories == {"wind": ["E", "N", "S"]}
    out = encoder.transform(frame())
    assert list(out.columns) == ["y", "wind=E", "wind=N", "wind=S"]
    np.testing.assert_array_equal(out["wind=N"], [1, 0, 1, 0, 0, 1, 0, 1])
    assert (out[["wind=E", "wind=N", "wind=S"]].sum(axis=1) == 1).all()


def test_unseen_level_is_all_zeros_with_a_warning(caplog):
    encoder = FeatureEncoder.fit(frame(), target="y")
    later = frame(wind=("N", "W", "N", "E", "S", "N", "E", "N")).astype({"wind": "object"})
    with caplog.at_level(logging.WARNING):
        out = encoder.transform(later, "test")
    assert out.iloc[1][["wind=E", "wind=N", "wind=S"]].tolist() == [0, 0, 0]
    assert "test: column 'wind': 1 values not seen in training" in caplog.text


def test_text_columns_are_categories_but_numbers_in_text_are_not():
    df = frame().astype({"wind": "str"})
    df["reading"] = ["1.5", "2", "n/a", "3", "4", "5", "6", "7"]  # a numeric column with a stray
    encoder = FeatureEncoder.fit(df, target="y")
    assert list(encoder.categories) == ["wind"]


def test_too_many_levels_named_explicitly_is_an_error():
    n = MAX_LEVELS + 5
    df = pd.DataFrame(
        {"y": np.arange(n, dtype=float), "id": [f"c{i}" for i in range(n)]},
        index=pd.date_range("2024-01-01", periods=n, freq="h"),
    )
    with pytest.raises(DataError, match=f"'id' has {n} distinct text values"):
        FeatureEncoder.fit(df, target="y", features=["id"])
    assert FeatureEncoder.fit(df, target="y").categories == {}


def test_calendar_features_are_exact_sine_cosine_pairs():
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-03 12:00"])
    cal = calendar_features(index, ("hour", "dow"))
    assert list(cal.columns) == ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    np.testing.assert_allclose(cal["hour_sin"], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(cal["hour_cos"], [1, 0, -1], atol=1e-12)
    # 2024-01-01 is a Monday (0); 2024-01-03 a Wednesday (2).
    np.testing.assert_allclose(cal["dow_sin"], np.sin(2 * np.pi * np.array([0, 0, 2]) / 7))
    assert calendar_kinds(pd.date_range("2024-01-01", periods=5, freq="30min")) == ("hour", "dow")
    assert calendar_kinds(pd.date_range("2024-01-01", periods=5, freq="D")) == ("dow", "doy")
    assert calendar_kinds(pd.date_range("2024-01-01", periods=5, freq="MS")) == ("month",)


def test_calendar_uses_local_time_of_a_tz_aware_index():
    index = pd.date_range("2024-01-01", periods=3, freq="h", tz="Australia/Melbourne")
    np.testing.assert_allclose(calendar_features(index, ("hour",))["hour_sin"].iloc[0], 0.0)


@pytest.fixture(scope="module")
def weather():
    """Hourly data whose target depends on a wind direction and the hour of day."""
    rng = np.random.default_rng(0)
    n = 600
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="timestamp")
    wind = rng.choice(["N", "S", "calm"], size=n)
    y = 5 * (wind == "S") + np.sin(2 * np.pi * index.hour / 24) + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {"y": y, "wind": pd.Categorical(wind), "temp": rng.normal(size=n)}, index=index
    )


def test_forecaster_one_hot_and_calendar_inputs_survive_save_and_load(weather, tmp_path):
    train, val, test = dc.split(weather)
    f = dc.Forecaster("y", lookback=12, units=8, layers=1, calendar=True, seed=0)
    f.fit(train, validation=val, epochs=2, verbose=False)
    assert f.feature_names_ == [
        "y", "wind=N", "wind=S", "wind=calm", "temp", "hour_sin", "hour_cos", "dow_sin", "dow_cos",
    ]  # fmt: skip
    assert f.input_columns == ["y", "wind", "temp"]
    loaded = dc.Forecaster.load(f.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict(test), f.predict(test), rtol=1e-5)
    assert loaded.input_columns == ["y", "wind", "temp"]


def test_named_features_expand_to_their_encoded_columns(weather):
    train, val, _ = dc.split(weather)
    f = dc.Forecaster("y", lookback=12, units=8, layers=1, features=["wind"], seed=0)
    f.fit(train, validation=val, epochs=1, verbose=False)
    assert f.feature_names_ == ["y", "wind=N", "wind=S", "wind=calm"]


def test_levels_come_from_the_training_rows_only():
    # A category dtype declared over the whole file lists "W" although training never sees it.
    train = frame().astype({"wind": pd.CategoricalDtype(["E", "N", "S", "W"])})
    assert FeatureEncoder.fit(train, target="y").categories == {"wind": ["E", "N", "S"]}


def test_calendar_needs_timestamps():
    df = frame().reset_index(drop=True)
    with pytest.raises(DataError, match="calendar features need a DatetimeIndex"):
        FeatureEncoder.fit(df, target="y", calendar=True)
    with pytest.raises(DataError, match="the index must hold timestamps"):
        dc.Forecaster("y", lookback=2, calendar=True).fit(df, epochs=1)
