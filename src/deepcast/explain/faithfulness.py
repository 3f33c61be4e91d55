"""Deletion checks: do the cells an explanation ranks highest really move the forecast?

For each window, the k cells with the largest |attribution| are set to their baseline value
and the forecast change is measured; the same is done for k cells drawn at random. A faithful
explanation changes the forecast far more through its top-k cells than chance does.
`deletion_insertion` draws the whole curves, k = 0 .. all cells, and their areas.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from deepcast import _backend
from deepcast.explain.explanation import Explanation
from deepcast.explain.methods import forecasts


def deletion_check(
    model,
    explanation: Explanation,
    k: int = 5,
    repeats: int = 5,
    seed: int = 0,
    windows: np.ndarray | None = None,
) -> dict:
    """Mean |f(x) - f(x with k cells set to baseline)| for the top-k and for random k cells.

    Values are in the model's scaled output units; `ratio` = top / random. `windows`: the
    model's whole input when it is longer than the explained rows (known-future rows after
    the lookback, models/known_future.py); cells are deleted in the explained rows only.

    >>> deletion_check(model, e, k=5)   # {"k": 5, "top_k_change": 0.61, "random_k_change": ...}
    """
    x, b = explanation.inputs, explanation.baseline  # [n, L, F]
    full = np.asarray(x if windows is None else windows, dtype=np.float32)  # [n, >= L, F]
    n = len(x)
    cells = x[0].size
    k = int(min(max(k, 1), cells))
    column = explanation.horizon_step - 1
    forecast = _backend.outputs(model, full, column)  # [n]

    def change_after_deleting(chosen: np.ndarray) -> float:  # chosen [n, k] flat cell ids
        deleted = x.reshape(n, cells).copy()
        rows = np.arange(n)[:, None]
        deleted[rows, chosen] = b.reshape(n, cells)[rows, chosen]
        changed = full.copy()
        changed[:, : x.shape[1]] = deleted.reshape(x.shape)
        moved = _backend.outputs(model, changed, column)
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


def cell_order(values: np.ndarray) -> np.ndarray:
    """Per window, flat cell indices by |attribution|, largest first: [n, rows * F]."""
    n = len(values)
    return np.argsort(-np.abs(values).reshape(n, -1), axis=1, kind="stable")


def curve_points(cells: int, points: int = 48) -> np.ndarray:
    """Numbers of cells to delete: every k up to 8 (the top cells decide a curve's start),
    then `points` evenly spaced up to all cells."""
    return np.unique(np.r_[np.arange(min(cells, 8) + 1), np.linspace(0, cells, points + 1)]).astype(
        int
    )


def deletion_insertion(
    model,
    inputs: np.ndarray,
    baseline: np.ndarray,
    order: np.ndarray,
    output_index: int = 0,
    ks: np.ndarray | None = None,
    batch_size: int = 1024,
) -> dict:
    """Deletion and insertion curves of one cell ranking (Petsiuk et al. 2018, RISE).

    Deleting the k first cells of each window's `order` (setting them to the baseline) moves
    f(x) towards f(b); inserting them into the baseline moves f(b) towards f(x). With
    gap = mean |f(x) - f(b)| over windows:

        deletion(k)  = mean |f(x without top k) - f(b)| / gap     1 -> 0, lower AUC = faithful
        insertion(k) = 1 - mean |f(b with top k) - f(x)| / gap    0 -> 1, higher AUC = faithful

    AUCs are trapezoids over the fraction of cells k / cells. Values in [0, 1] typically.

    >>> c = deletion_insertion(model, x, np.zeros_like(x), cell_order(e.values))
    >>> c["deletion_auc"], c["insertion_auc"]
    """
    n = len(inputs)
    shape = inputs.shape[1:]
    cells = int(np.prod(shape))
    ks = curve_points(cells) if ks is None else np.asarray(ks, dtype=int)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(cells)[None, :].repeat(n, axis=0), axis=1)
    x, b = inputs.reshape(n, cells), baseline.reshape(n, cells)
    rows = _backend.rows_per_call(batch_size)

    def batches():  # per k: the n windows with top k deleted, then with top k inserted
        for k in ks:
            deleted = np.concatenate([np.where(rank < k, b, x), np.where(rank < k, x, b)])
            deleted = deleted.reshape(-1, *shape)  # [2n, rows, F]
            yield from (deleted[i : i + rows] for i in range(0, 2 * n, rows))

    column = partial(_backend.outputs, model, output_index=output_index)
    out = np.concatenate(list(_backend.map_batches(column, batches()))).reshape(len(ks), 2, n)
    ends = forecasts(model, np.concatenate([inputs, baseline]), output_index, batch_size)
    fx, fb = ends[:n], ends[n:]
    gap = max(float(np.mean(np.abs(fx - fb))), 1e-12)
    deletion = np.mean(np.abs(out[:, 0] - fb), axis=1) / gap  # [K]
    insertion = 1 - np.mean(np.abs(out[:, 1] - fx), axis=1) / gap
    fraction = ks / ks[-1]  # ks end at every cell that may be deleted
    return {
        "fraction": fraction,
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": float(np.trapezoid(deletion, fraction)),
        "insertion_auc": float(np.trapezoid(insertion, fraction)),
        "gap": gap,
    }


def random_deletion_insertion(
    model,
    inputs: np.ndarray,
    baseline: np.ndarray,
    output_index: int = 0,
    repeats: int = 3,
    seed: int = 0,
    ks: np.ndarray | None = None,
    batch_size: int = 1024,
) -> dict:
    """`deletion_insertion` for random cell orders, curves averaged over `repeats`. With `ks`
    ending before the last cell, only the first ks[-1] cells (the lookback rows) are drawn."""
    rng = np.random.default_rng(seed)
    n, cells = len(inputs), int(np.prod(inputs.shape[1:]))
    ks = curve_points(cells) if ks is None else np.asarray(ks, dtype=int)
    ranked = int(ks[-1])  # the first `ranked` cells (row-major) are shuffled, the rest kept
    rest = np.broadcast_to(np.arange(ranked, cells), (n, cells - ranked))
    runs = [
        deletion_insertion(
            model,
            inputs,
            baseline,
            np.concatenate([np.argsort(rng.random((n, ranked)), axis=1), rest], axis=1),
            output_index,
            ks,
            batch_size,
        )
        for _ in range(repeats)
    ]
    mean = {key: np.mean([r[key] for r in runs], axis=0) for key in ("deletion", "insertion")}
    fraction = runs[0]["fraction"]
    return {
        "fraction": fraction,
        **mean,
        "deletion_auc": float(np.trapezoid(mean["deletion"], fraction)),
        "insertion_auc": float(np.trapezoid(mean["insertion"], fraction)),
        "gap": runs[0]["gap"],
    }
