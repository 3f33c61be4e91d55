"""`compare`: several attribution methods on the same forecasts, scored on faithfulness.

For each method: deletion and insertion AUC (faithfulness.deletion_insertion) next to the same
curves for random cell orders, precision@k of the planted cells where the data has planted
truth, and seconds per window; between methods, the rank correlation of their cell
importances. Attribution methods disagree; this says which to trust on a given model.

>>> c = dc.explain.compare(f, test, methods=["integrated_gradients", "shap", "saliency"],
...                        truth=truth)    # truth: from synthetic(..., return_truth=True)
>>> c.table            # one row per method
>>> c.agreement        # Spearman correlation of by-cell importances, method x method
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepcast._jsonable import plain
from deepcast.errors import ConfigError
from deepcast.explain import faithfulness
from deepcast.explain.baselines import resolve_baseline
from deepcast.explain.explanation import Explanation
from deepcast.explain.methods import resolve

DEFAULT_METHODS = ("integrated_gradients", "saliency", "gradient_x_input", "occlusion", "shap")


@dataclass(frozen=True)
class Comparison:
    """What `compare` measured; `table` and `agreement` are indexed by method name."""

    table: pd.DataFrame
    agreement: pd.DataFrame
    curves: dict  # method -> {"fraction", "deletion", "insertion"} arrays; "random" too
    explanations: dict[str, Explanation] = field(repr=False)
    truth_cells: list[tuple[str, int]] | None = None
    k: int = 2  # precision@k's k

    def to_dict(self) -> dict:
        """The table, agreement and curves as plain JSON values."""
        return {
            "methods": {
                m: {k: plain(v) for k, v in row.items()}
                for m, row in self.table.to_dict(orient="index").items()
            },
            "agreement": {
                m: {k: plain(v) for k, v in row.items()}
                for m, row in self.agreement.to_dict(orient="index").items()
            },
            "curves": {
                m: {k: [float(v) for v in c[k]] for k in ("fraction", "deletion", "insertion")}
                for m, c in self.curves.items()
            },
            "k": int(self.k),
            "planted_truth": (
                None
                if self.truth_cells is None
                else [{"feature": f, "lag": int(lag)} for f, lag in self.truth_cells]
            ),
        }

    def plot(self):
        """Deletion and insertion curves of every method and of random cell orders."""
        from deepcast.explain.comparison_plots import curves_figure

        return curves_figure(self.curves)


def compare(
    forecaster,
    data: pd.DataFrame,
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    truth=None,
    k: int | None = None,
    max_windows: int | None = 100,
    horizon_step: int = 1,
    baseline: str | float | np.ndarray = "zeros",
    options: dict[str, dict] | None = None,
    repeats: int = 3,
    seed: int = 0,
    verbose: bool | None = False,
) -> Comparison:
    """Explain the newest `max_windows` forecasts of `data` with each method and score them.

    `truth`: the planted cells, as a `PlantedTruth` (`synthetic(..., return_truth=True)`) or
    (feature, lag) pairs, lags counted for forecast step 1; precision@k is reported for
    them (k defaults to their number) and is NaN without truth. `options` gives a method its
    own options (`{"shap": {"samples": 200}}`). Deletion and insertion replace cells by
    `baseline` for every method alike.

    Columns of `table`: precision_at_k, lag_precision_at_k (the top lags against the planted
    lags, for methods without a feature axis too), deletion_auc (lower is more faithful),
    random_deletion_auc, insertion_auc (higher is more faithful), random_insertion_auc,
    seconds_per_window.
    """
    names = [resolve(m).name for m in methods]
    if not names:
        raise ConfigError("compare needs at least one method")
    options = dict(options or {})
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"options for {unknown[0]!r}, which is not among methods {names}")
    explanations = {
        name: forecaster.explain(
            data,
            method=name,
            horizon_step=horizon_step,
            max_windows=max_windows,
            verbose=verbose,
            **options.get(name, {}),
        )
        for name in names
    }
    from deepcast.models import heads

    windows = forecaster._input_windows(forecaster._frame(data, "data"))  # as the model reads
    if max_windows is not None:
        windows = windows[-max_windows:]
    return score(
        heads.output_model(forecaster.model, forecaster.head),
        explanations,
        windows=windows,
        truth=truth,
        k=k,
        baseline=baseline,
        repeats=repeats,
        seed=seed,
    )


def score(
    model,
    explanations: dict[str, Explanation],
    *,
    windows: np.ndarray | None = None,
    truth=None,
    k: int | None = None,
    baseline: str | float | np.ndarray = "zeros",
    repeats: int = 3,
    seed: int = 0,
) -> Comparison:
    """`compare`'s scores for explanations already made, all of the same windows and step.

    `windows` are the windows as the model reads them when they carry known-future rows
    after the explained (lookback) rows; those rows keep their values in every curve.
    """
    first = next(iter(explanations.values()))
    n_rows, n_features = first.inputs.shape[1:]
    x = first.inputs if windows is None else np.asarray(windows, dtype=np.float32)
    if x.shape[0] != len(first.inputs) or x.shape[1] < n_rows:
        raise ConfigError(
            f"score: windows {x.shape} do not extend the explained ones {first.inputs.shape}"
        )
    b = x.copy()  # [n, rows_read, F]: known-future rows are never deleted
    b[:, :n_rows] = resolve_baseline(baseline, first.inputs)
    column = first.horizon_step - 1
    ks = faithfulness.curve_points(n_rows * n_features)  # only the explained cells are ranked
    random = faithfulness.random_deletion_insertion(
        model, x, b, column, repeats=repeats, seed=seed, ks=ks
    )
    cells = _truth_cells(truth, first.horizon_step)
    k = k or (len(cells) if cells else 2)
    rows, curves = {}, {}
    for name, e in explanations.items():
        if e.inputs.shape != first.inputs.shape or e.horizon_step != first.horizon_step:
            raise ConfigError("score: every explanation must be of the same windows and step")
        values = np.zeros(x.shape)
        values[:, :n_rows] = e.values  # future rows rank last and are never reached by ks
        c = faithfulness.deletion_insertion(
            model, x, b, faithfulness.cell_order(values), column, ks
        )
        curves[name] = c
        rows[name] = {
            "precision_at_k": _precision(e, cells, k),
            "lag_precision_at_k": _lag_precision(e, cells),
            "deletion_auc": c["deletion_auc"],
            "random_deletion_auc": random["deletion_auc"],
            "insertion_auc": c["insertion_auc"],
            "random_insertion_auc": random["insertion_auc"],
            "seconds_per_window": e.diagnostics.get("seconds", float("nan")) / len(e.values),
        }
    curves["random"] = random
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    return Comparison(
        table=table,
        agreement=agreement(explanations),
        curves=curves,
        explanations=explanations,
        truth_cells=cells,
        k=k,
    )


def agreement(explanations: dict[str, Explanation]) -> pd.DataFrame:
    """Spearman rank correlation between methods' by-cell importances (mean |attribution|)."""
    ranks = pd.DataFrame(
        {name: e.by_cell().to_numpy().ravel() for name, e in explanations.items()}
    ).rank()
    return ranks.corr(method="pearson")  # Pearson of ranks = Spearman


def _truth_cells(truth, horizon_step: int) -> list[tuple[str, int]] | None:
    """Planted cells as lags of the window that forecasts `horizon_step`: a driver k rows
    before the target is k - (step - 1) rows before the window's end; cells past it drop."""
    if truth is None:
        return None
    cells = truth.cells if hasattr(truth, "cells") else truth
    shifted = [(str(f), int(lag) - (horizon_step - 1)) for f, lag in cells]
    return [(f, lag) for f, lag in shifted if lag >= 1]


def _precision(e: Explanation, cells, k: int) -> float:
    """Share of the k most important cells that are planted; NaN without truth or a feature
    axis (a lags-only method cannot name a cell)."""
    if not cells or not e.feature_axis:
        return float("nan")
    unknown = {f for f, _ in cells} - set(e.feature_names)
    if unknown:
        raise ConfigError(f"planted truth names features the model does not read: {unknown}")
    top = e.top_cells(k)
    found = sum((f, int(lag)) in set(cells) for f, lag in zip(top.feature, top.lag))
    return found / k


def _lag_precision(e: Explanation, cells) -> float:
    """Share of the planted lags among the most important lags (as many as planted)."""
    if not cells:
        return float("nan")
    lags = {lag for _, lag in cells}
    top = e.by_lag().sort_values(ascending=False, kind="stable").index[: len(lags)]
    return len(lags & {int(lag) for lag in top}) / len(lags)
