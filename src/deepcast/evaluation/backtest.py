"""Rolling-origin backtesting: expanding-window folds, each scored like a hold-out test.

The last `folds * fold_size` rows are cut into `folds` consecutive test blocks. Fold k trains
on every row before its block (the newest `val` fraction of those for early stopping; the
scaler sees only the rest), then forecasts every row of its block from the rows before it.
Nothing at or after a block's first row reaches that fold's training or scaling.

>>> result = backtest(dc.Forecaster("y", lookback=48), df, folds=5, epochs=20)
>>> result.aggregate["model"]["mae"]["mean"]

`engine="ray"` trains and scores the folds as Ray tasks, one fold per task, on a local Ray
instance or the cluster at `address=`; each task trains with this process's torch thread
count, so the metrics are those of the local run for the same seeds.

>>> backtest(dc.Forecaster("y", lookback=48), df, folds=5, engine="ray", address="head:6379")
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepcast import _params
from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.baselines import strongest_baseline

logger = logging.getLogger(__name__)

METRICS = ("mae", "rmse", "smape", "mase")


@dataclass(frozen=True)
class FoldBounds:
    """Row ranges of one fold, as half-open [start, stop) positions in the frame."""

    fit: tuple[int, int]  # training rows the scaler and the network learn from
    validation: tuple[int, int]  # early-stopping rows, just before the test block
    test: tuple[int, int]


def fold_bounds(
    n_rows: int, folds: int, fold_size: int | None = None, val: float = 0.15
) -> list[FoldBounds]:
    """Expanding-window folds over `n_rows` rows. `fold_size=None`: each test block is 10% of
    the rows, or less so that the first fold still trains on half of them.

    >>> [b.test for b in fold_bounds(100, folds=2, fold_size=10)]
    [(80, 90), (90, 100)]
    """
    _params.check("backtest", {"folds": folds}, {"folds": _params.positive_int()})
    if fold_size is None:
        fold_size = min(n_rows // 10, n_rows // (2 * folds))
        if fold_size < 1:
            raise DataError(f"{n_rows} rows are too few for {folds} folds")
    _params.check("backtest", {"fold_size": fold_size}, {"fold_size": _params.positive_int()})
    first_test = n_rows - folds * fold_size
    if first_test < 2:
        raise DataError(
            f"{n_rows} rows are too few for {folds} folds of {fold_size} rows and a training part"
        )
    bounds = []
    for k in range(folds):
        start = first_test + k * fold_size
        n_val = int(round(start * val))
        bounds.append(
            FoldBounds((0, start - n_val), (start - n_val, start), (start, start + fold_size))
        )
    return bounds


@dataclass
class BacktestResult:
    """Per-fold and aggregate metrics of the model and its baselines, in original units."""

    folds: list[dict]
    aggregate: dict
    settings: dict
    # timestamps, actual, model and strongest-baseline forecasts (t+1) of the last fold
    last_fold: dict = field(repr=False)
    forecasters: list = field(
        default_factory=list, repr=False
    )  # one per fold (shared if not retrained)

    def table(self) -> str:
        """Plain text: MAE per fold for the model and each baseline, then the mean."""
        systems = ["model", *self.folds[0]["metrics"]["baselines"]]
        header = f"{'fold':<6}{'test from':<27}" + "".join(f"{s:>20}" for s in systems)
        lines = [header]
        for fold in self.folds:
            m = fold["metrics"]
            values = [m["mae"]] + [m["baselines"][s]["mae"] for s in systems[1:]]
            lines.append(
                f"{fold['fold']:<6}{fold['test_start'][:25]:<27}"
                + "".join(f"{v:>20.4g}" for v in values)
            )
        means = [self.aggregate[s]["mae"]["mean"] for s in systems]
        lines.append(f"{'mean':<33}" + "".join(f"{v:>20.4g}" for v in means))
        return "MAE per fold (original units)\n" + "\n".join(lines)

    def to_json(self) -> dict:
        return {"settings": self.settings, "folds": self.folds, "aggregate": self.aggregate}

    def plot(self):
        from deepcast.evaluation.plots import backtest_figure

        return backtest_figure(self)


def backtest(
    forecaster,
    df: pd.DataFrame,
    folds: int = 5,
    *,
    retrain: bool = True,
    fold_size: int | None = None,
    val: float = 0.15,
    epochs: int = 50,
    batch_size: int = 64,
    verbose: bool | None = None,
    levels: list[float] | None = None,
    method: str | None = None,
    engine: str = "local",
    address: str | None = None,
) -> BacktestResult:
    """Backtest an (unfitted) `forecaster` configuration over expanding-window folds.

    `retrain=True` fits a fresh copy (scaler, network, baselines) on every fold's training
    rows; `retrain=False` fits once on the first fold's and scores that model on every fold.
    `forecaster` itself is never fitted or changed. `levels` scores intervals by `method` in
    every fold (each fold's model calibrated on its own validation rows), as `evaluate` does.
    `engine="ray"` runs each fold as a Ray task (locally, or on the cluster at `address`).
    """
    forecaster.check_params()
    _params.check("backtest", {"val": val}, {"val": _params.fraction(low_inclusive=False)})
    if engine not in ("local", "ray"):
        raise ConfigError(f"backtest engine must be local or ray. Received: engine={engine!r}")
    if address is not None and engine != "ray":
        raise ConfigError("a Ray address needs engine='ray'")
    bounds = fold_bounds(len(df), folds, fold_size, val)
    _check_fits(bounds[0], forecaster.lookback, forecaster.horizon, len(df))
    fit_args = {"epochs": epochs, "batch_size": batch_size, "verbose": verbose}
    score_args = {"levels": levels, "method": method}
    remote = None
    if engine == "ray" and retrain:
        remote = _ray_folds(forecaster, df, bounds, fit_args, score_args, address)
    results, fitted, current, trained_on = [], [], None, None
    for k, bound in enumerate(bounds, start=1):
        test_part = df.iloc[slice(*bound.test)]
        seconds, trained_now = 0.0, current is None or retrain
        if trained_now:
            fit_part = df.iloc[slice(*bound.fit)]
            val_part = df.iloc[slice(*bound.validation)]
            logger.info(
                "fold %d/%d: training on %d rows (%s .. %s), validating on %d",
                k,
                len(bounds),
                len(fit_part),
                fit_part.index[0],
                fit_part.index[-1],
                len(val_part),
            )
            if remote is not None:
                current, seconds, scores, node = remote[k - 1]
            else:
                current, seconds = _fit_fold(forecaster, df, bound, fit_args)
            trained_on = {
                "train_start": str(fit_part.index[0]),
                "train_end": str(fit_part.index[-1]),
                "validation_end": str(val_part.index[-1]),
                "rows": {"train": len(fit_part), "validation": len(val_part)},
                "epochs_trained": len(current.history_.epochs),
            }
        fitted.append(current)
        if remote is None:
            scores = _score_fold(current, df, bound, score_args)
        results.append(
            {
                "fold": k,
                # The rows the scoring model learned from (fold 1's when not retrained).
                **{key: value for key, value in trained_on.items() if key != "rows"},
                "test_start": str(test_part.index[0]),
                "test_end": str(test_part.index[-1]),
                "rows": {**trained_on["rows"], "test": len(test_part)},
                "retrained": trained_now,
                "fit_seconds": seconds,
                **({"node": node} if remote is not None else {}),  # the Ray node that ran it
                "metrics": scores,
            }
        )
        logger.info("fold %d/%d: MAE %.4g", k, len(bounds), scores["mae"])
    aggregate = _aggregate(results)
    last = _last_fold_forecasts(fitted[-1], df, bounds[-1], strongest_baseline(aggregate))
    settings = {
        "folds": folds,
        "fold_size": bounds[0].test[1] - bounds[0].test[0],
        "retrain": retrain,
        "val": val,
        "epochs": epochs,
        "batch_size": batch_size,
        "engine": engine,
        "params": forecaster.get_params(),
        "rows": len(df),
    }
    return BacktestResult(results, aggregate, settings, last, fitted)


def _fit_fold(forecaster, df: pd.DataFrame, bound: FoldBounds, fit_args: dict):
    """A fresh copy of `forecaster` fitted on the fold's rows, and the seconds it took."""
    start = time.perf_counter()
    fitted = type(forecaster)(**forecaster.get_params()).fit(
        df.iloc[slice(*bound.fit)], validation=df.iloc[slice(*bound.validation)], **fit_args
    )
    return fitted, time.perf_counter() - start


def _score_fold(fitted, df: pd.DataFrame, bound: FoldBounds, score_args: dict) -> dict:
    test_part = df.iloc[slice(*bound.test)]
    return fitted.evaluate(test_part, history=df.iloc[: bound.test[0]], **score_args)


def _fold_task(forecaster, df, bound, fit_args, score_args, threads):
    """One fold on a Ray worker: the same fit and scoring as the local loop."""
    import torch

    torch.set_num_threads(threads)  # this process's count: same arithmetic, same metrics
    import ray

    fitted, seconds = _fit_fold(forecaster, df, bound, fit_args)
    node = ray.get_runtime_context().get_node_id()
    return fitted, seconds, _score_fold(fitted, df, bound, score_args), node


def _ray_folds(forecaster, df, bounds, fit_args, score_args, address) -> list[tuple]:
    """Every fold as a Ray task (one CPU each); [(fitted, seconds, scores, node)] in order."""
    import ray
    import torch

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {first}") from None
    try:
        task = ray.remote(num_cpus=1)(_fold_task)
        shared = ray.put(df)
        threads = torch.get_num_threads()
        fit_args = {**fit_args, "verbose": False}
        logger.info("backtest: %d folds as Ray tasks", len(bounds))
        return ray.get(
            [task.remote(forecaster, shared, b, fit_args, score_args, threads) for b in bounds]
        )
    finally:
        if started:
            ray.shutdown()


def _check_fits(first: FoldBounds, lookback: int, horizon: int, n_rows: int) -> None:
    """The first (smallest) fold must hold training windows, validation and test targets."""
    test_rows = first.test[1] - first.test[0]
    if test_rows < horizon:
        raise DataError(
            f"folds of {test_rows} rows are shorter than the horizon {horizon}; use fewer "
            "folds or a larger fold_size"
        )
    fit_rows, val_rows = first.fit[1] - first.fit[0], first.validation[1] - first.validation[0]
    if fit_rows <= lookback + horizon or val_rows < horizon:
        raise DataError(
            f"{n_rows} rows leave the first fold {fit_rows} training and {val_rows} validation "
            f"rows; lookback {lookback} + horizon {horizon} need more than {lookback + horizon} "
            f"and at least {horizon}; use fewer folds or a smaller fold_size"
        )


INTERVAL_SCORES = ("coverage_", "width_", "winkler_", "pinball", "crps")


def _aggregate(folds: list[dict]) -> dict:
    """Mean and standard deviation over folds of every metric, per system; a baseline that
    some fold could not score (too little history) is aggregated over the folds that have it."""
    systems = {"model": [f["metrics"] for f in folds]}
    for fold in folds:
        for name, scores in fold["metrics"]["baselines"].items():
            systems.setdefault(name, []).append(scores)
    # Interval scores (coverage_80, width_80, ..., pinball, crps) when the folds have them.
    interval_keys = [k for k in folds[0]["metrics"] if k.startswith(INTERVAL_SCORES)]
    out = {}
    for name, per_fold in systems.items():
        out[name] = {"folds": len(per_fold)}
        for metric in (*METRICS, *(interval_keys if name == "model" else ())):
            values = np.array([m[metric] for m in per_fold if m[metric] is not None], float)
            if len(values):
                out[name][metric] = {"mean": float(values.mean()), "std": float(values.std())}
    return out


def _last_fold_forecasts(forecaster, df: pd.DataFrame, bound: FoldBounds, baseline: str) -> dict:
    """One-step-ahead forecasts over the last test block, for the plot: the model's and the
    `baseline`'s (any baseline some fold scored; the last fold has the most history)."""
    start, stop = bound.test
    scored = forecaster._scored_forecasts(df.iloc[start:stop], df.iloc[:start])
    return {
        "timestamps": scored["times"],
        "actual": scored["actual"][:, 0],
        "model": scored["model"][:, 0],
        "baseline": scored[baseline][:, 0],
        "baseline_name": baseline,
        "seasonal_period": forecaster.seasonal_period_,
        "target": forecaster.target,
        "model_name": forecaster.model_name,
    }
