"""The deletion check against a hand-derived value: on a linear model, deleting cells moves
the forecast by exactly the sum of their attributions."""

from __future__ import annotations

import numpy as np
import pytest

from deepcast.explain import Explanation, integrated_gradients
from deepcast.explain.faithfulness import deletion_check

from .conftest import FEATURES, LOOKBACK


@pytest.mark.parametrize("k", [1, 4])
def test_top_k_change_on_a_linear_model(linear, linear_weights, windows, k):
    baseline = np.full((LOOKBACK, FEATURES), 0.3, dtype="float32")
    e = Explanation.from_ig(integrated_gradients(linear, windows, baseline, steps=8))
    check = deletion_check(linear, e, k=k, repeats=3, seed=0)

    # f(x) = w . x + c, so setting cells S to the baseline moves f by -sum_S w (x - b), and
    # IG ranks the cells by |w (x - b)|: the top-k change is |sum of the k largest|.
    w = linear_weights[0][:, 0].reshape(LOOKBACK, FEATURES)  # Flatten keeps (lag, feature)
    contributions = (w * (windows - baseline)).reshape(len(windows), -1)  # [n, L * F]
    expected = [abs(sum(sorted(row, key=abs)[-k:])) for row in contributions]
    assert check["k"] == k
    assert check["top_k_change"] == pytest.approx(np.mean(expected), rel=1e-5)
