import numpy as np
import pandas as pd
import pytest

from deepcast.data.windows import Scaler, sliding_windows, split
from deepcast.errors import ConfigError, DataError


def frame(n: int) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="timestamp")
    return pd.DataFrame({"y": np.arange(n, dtype=float)}, index=index)


def test_split_is_chronological_disjoint_and_complete():
    train, val, test = split(frame(100), val=0.15, test=0.2)
    assert (len(train), len(val), len(test)) == (65, 15, 20)
    assert train.index.max() < val.index.min() and val.index.max() < test.index.min()
    assert pd.concat([train, val, test]).index.equals(frame(100).index)


@pytest.mark.parametrize("val,test", [(-0.1, 0.1), (0.5, 0.5), (0.2, 1.0)])
def test_split_rejects_bad_fractions(val, test):
    with pytest.raises(ConfigError, match="val|test"):
        split(frame(100), val=val, test=test)


def test_scaler_uses_only_the_rows_it_is_fitted_on():
    train = np.array([[1.0, 10.0], [3.0, 10.0]])
    scaler = Scaler.fit(train)
    np.testing.assert_allclose(scaler.mean, [2.0, 10.0])
    # A constant column keeps scale 1 instead of dividing by zero.
    np.testing.assert_allclose(scaler.scale, [1.0, 1.0])
    np.testing.assert_allclose(scaler.transform([[5.0, 12.0]]), [[3.0, 2.0]])
    np.testing.assert_allclose(scaler.inverse(np.array([3.0]), column=0), [5.0])
    again = Scaler.from_json(scaler.to_json())
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.scale, scaler.scale)


def test_sliding_windows_match_a_hand_loop_and_do_not_copy():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(40, 3)).astype(np.float32)
    target = inputs[:, 0]
    lookback, horizon = 5, 3
    x, y = sliding_windows(inputs, target, lookback, horizon)
    n = 40 - lookback - horizon + 1
    assert x.shape == (n, lookback, 3) and y.shape == (n, horizon)
    for i in (0, 7, n - 1):
        np.testing.assert_array_equal(x[i], inputs[i : i + lookback])
        np.testing.assert_array_equal(y[i], target[i + lookback : i + lookback + horizon])
    # Views into the series, not copies: memory stays O(series length).
    assert np.shares_memory(x, inputs) and np.shares_memory(y, target)
    assert x.base is not None and not x.flags.writeable


def test_sliding_windows_too_short_series_is_a_data_error():
    with pytest.raises(DataError, match="too few"):
        sliding_windows(np.zeros((5, 1)), np.zeros(5), lookback=4, horizon=2)
