"""Explanation summaries against hand numpy recomputations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepcast.errors import ConfigError
from deepcast.explain import Explanation, IGResult

N, L, F = 5, 4, 3
NAMES = ["x1", "x2", "y"]


@pytest.fixture
def explanation() -> Explanation:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(N, L, F))
    forecast, baseline_forecast = rng.normal(size=N), rng.normal(size=N)
    result = IGResult(
        attributions=values,
        inputs=rng.normal(size=(N, L, F)).astype("float32"),
        baseline=np.zeros((N, L, F), "float32"),
        forecast=forecast,
        baseline_forecast=baseline_forecast,
        completeness_delta=rng.normal(scale=1e-4, size=N),
        relative_gap=1e-3,
        output_index=1,
        steps=32,
        method="gausslegendre",
    )
    return Explanation.from_ig(result, NAMES)


def test_fields(explanation):
    e = explanation
    assert e.lags.tolist() == [4, 3, 2, 1]  # row j has lag L - j; the last row is lag 1
    assert e.horizon_step == 2 and e.feature_names == NAMES and e.steps == 32


def test_by_cell(explanation):
    cells = explanation.by_cell()
    expected = np.array(
        [
            [np.mean([abs(explanation.values[i, j, f]) for i in range(N)]) for f in range(F)]
            for j in range(L)
        ]
    )
    np.testing.assert_allclose(cells.to_numpy(), expected)
    assert cells.index.name == "lag" and cells.index.tolist() == [4, 3, 2, 1]
    assert cells.columns.tolist() == NAMES


def test_by_lag_and_by_feature(explanation):
    v = explanation.values
    by_lag = explanation.by_lag()
    for j, lag in enumerate([4, 3, 2, 1]):
        assert by_lag.loc[lag] == pytest.approx(np.abs(v[:, j, :]).sum() / (N * F))
    by_feature = explanation.by_feature()
    for f, name in enumerate(NAMES):
        assert by_feature.loc[name] == pytest.approx(np.abs(v[:, :, f]).sum() / (N * L))


def test_for_window_is_signed(explanation):
    frame = explanation.for_window(3)
    np.testing.assert_array_equal(frame.to_numpy(), explanation.values[3])
    assert frame.loc[1, "y"] == explanation.values[3, L - 1, 2]  # lag 1 = newest row


def test_top_cells(explanation):
    top = explanation.top_cells(4)
    cells = np.abs(explanation.values).mean(axis=0)
    flat = sorted(
        ((cells[j, f], NAMES[f], L - j) for j in range(L) for f in range(F)), reverse=True
    )[:4]
    assert list(top.columns) == ["feature", "lag", "importance"]
    assert list(zip(top.feature, top.lag)) == [(name, lag) for _, name, lag in flat]
    np.testing.assert_allclose(top.importance, [imp for imp, _, _ in flat])


def test_to_json_is_plain_and_complete(explanation):
    data = json.loads(explanation.to_json())
    assert data["features"] == NAMES and data["lags"] == [4, 3, 2, 1]
    assert len(data["by_cell"]) == L * F
    cell = next(c for c in data["by_cell"] if c["feature"] == "x2" and c["lag"] == 1)
    assert cell["importance"] == pytest.approx(np.abs(explanation.values[:, L - 1, 1]).mean())
    assert [d["lag"] for d in data["by_lag"]] == [4, 3, 2, 1]
    assert data["by_feature"] == pytest.approx(explanation.by_feature().to_dict())
    gap = data["completeness"]
    assert gap["relative_gap_median"] == pytest.approx(1e-3)
    assert gap["abs_delta_max"] == pytest.approx(np.abs(explanation.completeness_delta).max())
    assert isinstance(pd.Series(data["by_feature"]).iloc[0], float)


def test_feature_names_default_and_mismatch(explanation):
    result = IGResult(
        explanation.values,
        explanation.inputs,
        explanation.baseline,
        explanation.forecast,
        explanation.baseline_forecast,
        explanation.completeness_delta,
        0.0,
        0,
        8,
        "riemann_middle",
    )
    assert Explanation.from_ig(result).feature_names == ["f0", "f1", "f2"]
    with pytest.raises(ConfigError, match="2 feature names for 3 features"):
        Explanation.from_ig(result, ["a", "b"])
