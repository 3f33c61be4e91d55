"""Deletion check: do the cells an explanation ranks highest really move the forecast?

For each window, the k cells with the largest |attribution| are set to their baseline value
and the forecast change is measured; the same is done for k cells drawn at random. A faithful
explanation changes the forecast far more through its top-k cells than chance does.
"""

from __future__ import annotations

import numpy as np

from deepcast import _backend
from deepcast.explain.explanation import Explanation


def deletion_check(
    model, explanation: Explanation, k: int = 5, repeats: int = 5, seed: int = 0
) -> dict:
    """Mean |f(x) - f(x with k cells set to baseline)| for the top-k and for random k cells.

    Values are in the model's scaled output units; `ratio` = top / random.

    >>> deletion_check(model, e, k=5)   # {"k": 5, "top_k_change": 0.61, "random_k_change": ...}
    """
    x, b = explanation.inputs, explanation.baseline  # [n, L, F]
    n = len(x)
    cells = x[0].size
    k = int(min(max(k, 1), cells))
    column = explanation.horizon_step - 1
    forecast = _backend.outputs(model, x, column)  # [n]

    def change_after_deleting(chosen: np.ndarray) -> float:  # chosen [n, k] flat cell ids
        deleted = x.reshape(n, cells).copy()
        rows = np.arange(n)[:, None]
        deleted[rows, chosen] = b.reshape(n, cells)[rows, chosen]
        moved = _backend.outputs(model, deleted.reshape(x.shape), column)
        return float(np.mean(np.abs(moved - forecast)))

    top = np.argsort(-np.abs(explanation.values).reshape(n, cells), axis=1)[:, :k]  # [n, k]
    rng = np.random.default_rng(seed)
    random_changes = [
        change_after_deleting(np.argsort(rng.random((n, cells)), axis=1)[:, :k])
        for _ in range(repeats)
    ]
    top_change = change_after_deleting(top)
    random_change = float(np.mean(random_changes))
    return {
        "k": k,
        "top_k_change": top_change,
        "random_k_change": random_change,
        "ratio": top_change / random_change if random_change > 0 else None,
        "repeats": repeats,
        "units": "scaled target",
    }
