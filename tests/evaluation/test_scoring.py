"""The baseline scores that `evaluate` reports and `strongest_baseline` picks from."""

import numpy as np
import pytest

from deepcast.evaluation.baselines import strongest_baseline
from deepcast.evaluation.scoring import baseline_scores


def test_baseline_scores_cover_every_baseline_in_report_order():
    actual = np.array([[1.0, 2.0], [3.0, 4.0]])
    scored = {
        "actual": actual,
        "model": actual,  # not a baseline
        "linear": actual + 0.5,
        "naive": actual + np.array([[1.0, -1.0], [1.0, 3.0]]),
        "seasonal_naive": actual - 2.0,
        "seasonal_naive_168": actual + 0.25,
    }
    scores = baseline_scores(scored, mase_scale=0.5)
    assert list(scores) == ["naive", "seasonal_naive", "seasonal_naive_168", "linear"]
    assert scores["naive"]["mae"] == pytest.approx(1.5)  # (1 + 1 + 1 + 3) / 4
    assert scores["naive"]["rmse"] == pytest.approx(np.sqrt(3.0))  # (1 + 1 + 1 + 9) / 4
    assert scores["seasonal_naive"]["mase"] == pytest.approx(2.0 / 0.5)
    assert strongest_baseline(scores) == "seasonal_naive_168"
