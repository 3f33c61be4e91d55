"""The served fast path reads JSON records straight into a window only when they sit at the
model's step with no gap; rows with a gap take the full path, which names the gap (or fills
it, for a model trained with a fill method) — never a forecast from rows an hour apart here
and three hours apart there."""

from __future__ import annotations

import numpy as np
import pytest

from deepcast.errors import DataError
from deepcast.serving.runtime import ServedModel

from .conftest import records


@pytest.fixture(scope="module")
def served(served_forecaster):
    _, path = served_forecaster
    return ServedModel.load("syn", "1", path)


def test_records_at_the_step_take_the_fast_path_and_match_predict(served, serving_data):
    rows = records(serving_data[2].iloc[:40])
    assert served._fast_window(rows) is not None
    expected = served.forecaster.predict(serving_data[2].iloc[:40]).iloc[-1].to_numpy()
    got = [s["value"] for s in served.forecast(rows)["forecast"]]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_gap_inside_the_window_is_named_not_forecast_through(served, serving_data):
    rows = records(serving_data[2].iloc[:40])
    del rows[30]  # one hour missing inside the newest 24 rows
    assert served._fast_window(rows) is None
    with pytest.raises(DataError) as error:
        served.forecast(rows)
    message = str(error.value)
    assert "\n" not in message and ("gap" in message or "missing" in message), message


def test_a_gap_before_the_window_does_not_matter(served, serving_data):
    rows = records(serving_data[2].iloc[:40])
    del rows[5]  # older than the newest 24 rows the model reads
    assert served._fast_window(rows) is not None
