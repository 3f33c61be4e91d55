"""Deletion / insertion curves against closed forms on a linear model; `compare` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepcast.data.synthetic import planted_truth
from deepcast.errors import ConfigError
from deepcast.explain import compare, faithfulness, methods

from .conftest import FEATURES, LOOKBACK


def test_deletion_and_insertion_curves_of_a_linear_model(linear, linear_weights, windows):
    # f(x) = w . x + c: deleting the cells S moves f(x) - f(b) by exactly -sum_S w (x - b).
    b = np.full_like(windows, 0.2)
    e = methods.explain(linear, windows, "gradient_x_input")
    order = faithfulness.cell_order(e.values)
    ks = np.array([0, 1, 5, 20, LOOKBACK * FEATURES])
    c = faithfulness.deletion_insertion(linear, windows, b, order, ks=ks)
    contrib = (linear_weights[0][:, 0].reshape(LOOKBACK, FEATURES) * (windows - b)).reshape(
        len(windows), -1
    )  # [n, cells]: w (x - b)
    ranked = np.take_along_axis(contrib, order, axis=1)
    gap = np.abs(contrib.sum(axis=1)).mean()
    remaining = [np.abs(ranked[:, k:].sum(axis=1)).mean() / gap for k in ks]
    inserted = [1 - np.abs(ranked[:, k:].sum(axis=1)).mean() / gap for k in ks]
    # insertion of the top k leaves f(x) - f(b with top k) = the rest's sum, the same numbers
    np.testing.assert_allclose(c["deletion"], remaining, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c["insertion"], inserted, rtol=1e-4, atol=1e-5)
    assert c["deletion"][0] == pytest.approx(1) and c["deletion"][-1] == pytest.approx(0, abs=1e-5)
    fraction = ks / (LOOKBACK * FEATURES)
    assert c["deletion_auc"] == pytest.approx(np.trapezoid(remaining, fraction), rel=1e-4)


def test_truth_cells_shift_with_the_forecast_step():
    from deepcast.explain.compare import _truth_cells

    assert _truth_cells(planted_truth(), 1) == [("x1", 3), ("x2", 6)]
    assert _truth_cells(planted_truth(), 4) == [("x2", 3)]  # x1 three rows back is in the future
    assert _truth_cells(None, 1) is None


@pytest.fixture(scope="module")
def comparison(fitted, small_parts):
    return compare(
        fitted,
        small_parts[2],
        methods=["ig", "saliency", "occlusion"],
        truth=planted_truth(),
        max_windows=16,
        options={"integrated_gradients": {"steps": 16}},
    )


def test_compare_table_curves_and_agreement(comparison, fitted, small_parts):
    c = comparison
    assert list(c.table.index) == ["integrated_gradients", "saliency", "occlusion"]
    assert set(c.table.columns) >= {
        "precision_at_k", "lag_precision_at_k", "deletion_auc", "random_deletion_auc",
        "insertion_auc", "random_insertion_auc", "seconds_per_window",
    }  # fmt: skip
    assert (c.table.seconds_per_window > 0).all()
    assert c.table.random_deletion_auc.nunique() == 1  # one random reference for all
    # precision@2 recomputed from the explanation's own top cells
    e = c.explanations["occlusion"]
    top = set(zip(e.top_cells(2).feature, e.top_cells(2).lag))
    assert c.table.loc["occlusion", "precision_at_k"] == len(top & {("x1", 3), ("x2", 6)}) / 2
    for name, curve in c.curves.items():
        assert curve["deletion"][0] == pytest.approx(1.0), name
        assert curve["deletion"][-1] == pytest.approx(0.0, abs=1e-6), name
        assert curve["insertion"][-1] == pytest.approx(1.0), name
    a = c.agreement
    np.testing.assert_allclose(np.diag(a), 1.0)
    np.testing.assert_allclose(a.to_numpy(), a.to_numpy().T)
    data = json.loads(json.dumps(c.to_dict()))
    assert data["planted_truth"] == [{"feature": "x1", "lag": 3}, {"feature": "x2", "lag": 6}]
    assert set(data["methods"]) == set(c.table.index) and "random" in data["curves"]
    assert len(c.plot().axes) == 2


def test_compare_rejects_unknown_methods_and_stray_options(fitted, small_parts):
    with pytest.raises(ConfigError, match="unknown explanation method 'lime'"):
        compare(fitted, small_parts[2], methods=["lime"])
    with pytest.raises(ConfigError, match="options for 'shap', which is not among methods"):
        compare(fitted, small_parts[2], methods=["saliency"], options={"shap": {}})
