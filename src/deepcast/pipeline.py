"""The whole job on one frame: split, tune, fit, evaluate, plot, explain, save.

Used by the CLI and the demo. Every file lands atomically in the run directory:
`metrics.json`, `forecast.png`, `model/`; when tuned `tuning.json`, `tuning.png` and the
resumable search state `tuning/`; when explained `attributions.json` and `attributions.png`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepcast import _atomic
from deepcast._jsonable import plain
from deepcast.data.io import check_length
from deepcast.data.windows import split
from deepcast.errors import ConfigError
from deepcast.forecaster import Forecaster
from deepcast.selection import AUTO, BUDGET_SECONDS, select_model
from deepcast.uncertainty import intervals

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    forecaster: Forecaster
    metrics: dict
    out: Path
    parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
    tuning: object = None  # deepcast.tuning.TuningResult when the run was tuned
    selection: object = None  # deepcast.selection.Selection with model="auto"


@dataclass
class TuningOptions:
    """How `run` searches hyperparameters before the final fit (see deepcast.tuning.tune)."""

    algorithm: str = "random"
    max_trials: int | None = 10
    epochs: int = 20
    search_space: object = None  # SearchSpace, dict, JSON file or None (the default space)
    narrow: dict | None = None
    overwrite: bool = False
    tolerance: float = 0.0  # choose the fastest trial within this fraction of the lowest loss
    address: str | None = None  # a Ray cluster for the ray-asha / ray-pbt tuners


def run(
    df: pd.DataFrame,
    *,
    target: str,
    out: str | Path,
    forecaster_args: dict | None = None,
    epochs: int = 50,
    batch_size: int = 64,
    val: float = 0.15,
    test: float = 0.15,
    tuning: TuningOptions | None = None,
    source: str = "data",
    verbose: bool | None = None,
    auto_budget: float | None = None,
    levels: list[float] | None = None,
    interval_method: str | None = None,
) -> RunResult:
    """Split `df` chronologically, optionally tune on train/val, fit the final model on train
    (early stopping on val) and score it on test. With `model="auto"` in `forecaster_args`,
    several families are fitted and the lowest validation loss is kept (`deepcast.selection`;
    `auto_budget` seconds, default 900). `levels` adds prediction intervals by
    `interval_method` (default conformal, calibrated on the validation part): scored in
    `metrics.json` (`coverage_80`, `width_80`, ...) and drawn as bands on `forecast.png`."""
    out = Path(out)
    forecaster_args = dict(forecaster_args or {})
    forecaster = Forecaster(target=target, **forecaster_args)
    check_length(len(df), forecaster.lookback, forecaster.horizon, source, val=val, test=test)
    if forecaster_args.get("model") != AUTO:  # bad interval requests fail before any training
        intervals.check_before_fit(forecaster, levels, interval_method)
    train_part, val_part, test_part = split(df, val=val, test=test)

    auto = forecaster_args.get("model") == AUTO
    if auto and tuning is not None:
        raise ConfigError(
            "--model auto chooses among families on their defaults; to tune, "
            "name one family (--model NAME --tuner random)"
        )
    tuned = selection = None
    if tuning is not None:
        tuned = _tune(train_part, val_part, target, forecaster_args, batch_size, tuning, out)
        forecaster = Forecaster(**tuned.best_forecaster_args())
        batch_size = tuned.best_fit_args()["batch_size"]
        logger.info("retraining the best configuration: %s", tuned.best_hyperparameters())

    if auto:
        selection = select_model(
            train_part,
            val_part,
            target=target,
            forecaster_args=forecaster_args,
            budget_seconds=BUDGET_SECONDS if auto_budget is None else auto_budget,
            epochs=epochs,
            batch_size=batch_size,
            verbose=verbose,
        )
        forecaster = selection.forecaster
    else:
        forecaster.fit(
            train_part, validation=val_part, epochs=epochs, batch_size=batch_size, verbose=verbose
        )
    # Scored with train + validation as history, so every test row is a forecast target.
    history = pd.concat([train_part, val_part])
    metrics = forecaster.evaluate(test_part, history=history, levels=levels, method=interval_method)
    metrics["data"] = {
        "source": source,
        "rows": {"train": len(train_part), "validation": len(val_part), "test": len(test_part)},
        "test_start": str(test_part.index[0]),
        "test_end": str(test_part.index[-1]),
    }
    metrics["params"] = forecaster.get_params()
    metrics["fit"] = {"epochs": epochs, "batch_size": batch_size}
    metrics["training"] = forecaster.history_.to_json()
    metrics["validation_check"] = forecaster.validation_check_.to_json()
    metrics["start"] = forecaster.start_
    if tuned is not None:
        metrics["tuning"] = {"algorithm": tuned.algorithm, "best": tuned.best_hyperparameters()}
    if selection is not None:
        metrics["model_selection"] = selection.to_json()

    forecaster.save(out / "model")
    _atomic.save_figure(
        out / "forecast.png",
        forecaster.plot_forecast(test_part, context=history, levels=levels, method=interval_method),
    )
    _write_interpretation(forecaster, test_part, history, out)
    _atomic.write_json(out / "metrics.json", metrics)
    return RunResult(forecaster, metrics, out, (train_part, val_part, test_part), tuned, selection)


def _write_interpretation(forecaster, test_part, history, out: Path) -> None:
    """Models interpretable by design show what they used: a TFT its variable selection and
    attention (`interpretation.png`, `interpretation.json`)."""
    if forecaster.model_name == "tft":
        context = pd.concat([history.iloc[-forecaster.lookback :], test_part])
        found = forecaster.interpret(context)
        _atomic.save_figure(out / "interpretation.png", found.plot())
        _atomic.write_json(out / "interpretation.json", found.to_dict())


def _tune(train_part, val_part, target, forecaster_args, batch_size, options, out):
    from deepcast import tuning

    result = tuning.tune(
        train_part,
        val_part,
        target=target,
        directory=out / "tuning",
        forecaster_args=forecaster_args,
        algorithm=options.algorithm,
        max_trials=options.max_trials,
        search_space=options.search_space,
        narrow=options.narrow,
        overwrite=options.overwrite,
        epochs=options.epochs,
        batch_size=batch_size,
        tolerance=options.tolerance,
        address=options.address,
    )
    tuning.write_report(result, out)
    return result


def metrics_table(metrics: dict) -> str:
    """A plain-text table: the model next to its baselines on the hold-out part."""
    rows = [("model", metrics)] + list(metrics["baselines"].items())
    keys = ("rmse", "mae", "smape", "mase")
    width = max(16, *(len(name) + 2 for name, _ in rows))
    header = f"{'':<{width}}" + "".join(f"{k.upper():>10}" for k in keys)
    lines = [header]
    for name, m in rows:
        cells = "".join(f"{_fmt(m.get(k)):>10}" for k in keys)
        lines.append(f"{name:<{width}}{cells}")
    skill = metrics.get("skill_vs_seasonal_naive")
    if skill is not None:
        reference = metrics.get("skill_reference", "seasonal_naive")
        lines.append(f"RMSE skill vs the best seasonal naive ({reference}): {skill:+.1%}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def explain(
    forecaster: Forecaster,
    data: pd.DataFrame,
    out: str | Path,
    *,
    steps: int = 64,
    max_windows: int | None = 512,
    truth_cells: list[tuple[str, int]] | None = None,
    verbose: bool | None = None,
) -> dict:
    """Integrated Gradients on the newest `max_windows` forecasts of `data`, written to
    `attributions.json`, `attributions.png` (lag x feature heatmap) and
    `attributions_window.png` (the newest forecast, signed)."""
    from deepcast.explain.faithfulness import deletion_check
    from deepcast.explain.plots import window_figure
    from deepcast.models import heads

    out = Path(out)
    e = forecaster.explain(data, steps=steps, max_windows=max_windows, verbose=verbose)
    report = e.to_dict()
    report["top_cells"] = e.top_cells(10).to_dict(orient="records")
    windows = forecaster._input_windows(forecaster._frame(data, "data"))  # as the model reads
    if max_windows is not None:
        windows = windows[-max_windows:]
    model = heads.output_model(forecaster.model, forecaster.head)
    report["deletion_check"] = deletion_check(model, e, k=5, seed=forecaster.seed, windows=windows)
    if truth_cells is not None:
        report["planted_truth"] = [{"feature": f, "lag": lag} for f, lag in truth_cells]
    _atomic.save_figure(out / "attributions.png", e.plot(truth_cells=truth_cells))
    _atomic.save_figure(out / "attributions_window.png", window_figure(e, len(e.values) - 1))
    _atomic.write_json(out / "attributions.json", plain(report))
    return report


def explanation_summary(report: dict, k: int = 5) -> str:
    """Top cells, completeness and the deletion check, as a few readable lines."""
    truth = {(c["feature"], c["lag"]) for c in report.get("planted_truth", [])}
    lines = [f"top {k} (feature, lag) cells by mean |attribution|:"]
    for cell in report["top_cells"][:k]:
        mark = "  <- planted" if (cell["feature"], cell["lag"]) in truth else ""
        lines.append(f"  {cell['feature']:>8} lag {cell['lag']:<3} {cell['importance']:.4f}{mark}")
    gap = report["completeness"]["relative_gap_median"]
    d = report["deletion_check"]
    lines.append(f"completeness gap (median over windows): {gap:.2%}")
    lines.append(
        f"deletion check, k={d['k']}: forecast moves {d['top_k_change']:.3f} when the top cells "
        f"are removed vs {d['random_k_change']:.3f} for random cells"
    )
    return "\n".join(lines)


def backtest(
    df: pd.DataFrame,
    *,
    target: str,
    out: str | Path,
    forecaster_args: dict | None = None,
    folds: int = 5,
    fold_size: int | None = None,
    retrain: bool = True,
    epochs: int = 50,
    batch_size: int = 64,
    source: str = "data",
    verbose: bool | None = None,
    levels: list[float] | None = None,
    interval_method: str | None = None,
    ray_address: str | None = None,
):
    """Rolling-origin backtest of one configuration; writes `backtest.json` and
    `backtest.png` to `out` and returns the `BacktestResult`. `levels` scores intervals per
    fold (coverage, width, Winkler, pinball, CRPS; in the aggregate for the model).
    `ray_address` runs the folds as Ray tasks on that cluster ("local": a Ray instance here)."""
    out = Path(out)
    forecaster = Forecaster(target=target, **dict(forecaster_args or {}))
    intervals.check_before_fit(forecaster, levels, interval_method)
    options = {
        "retrain": retrain,
        "fold_size": fold_size,
        "epochs": epochs,
        "batch_size": batch_size,
        "verbose": verbose,
        "levels": levels,
        "method": interval_method,
    }
    if ray_address:
        from deepcast.evaluation.backtest import backtest as run_backtest

        result = run_backtest(forecaster, df, folds, engine="ray", address=ray_address, **options)
    else:
        result = forecaster.backtest(df, folds, **options)
    report = result.to_json()
    report["data"] = {"source": source, "rows": len(df), "start": str(df.index[0])}
    _atomic.save_figure(out / "backtest.png", result.plot())
    _atomic.write_json(out / "backtest.json", plain(report))
    return result


def backtest_summary(result) -> str:
    """One line: the model's mean MAE against the best seasonal-naive baseline's."""
    from deepcast.evaluation.baselines import best_baseline

    model = result.aggregate["model"]["mae"]["mean"]
    best = best_baseline(result.aggregate)
    reference = result.aggregate[best]["mae"]["mean"]
    line = (
        f"mean MAE {model:.4g} vs {best.replace('_', ' ')} {reference:.4g}: "
        f"{1 - model / reference:+.1%} skill"
    )
    covered = sorted(k for k in result.aggregate["model"] if k.startswith("coverage_"))
    for key in covered:
        level = key.removeprefix("coverage_")
        width = result.aggregate["model"][f"width_{level}"]["mean"]
        coverage = result.aggregate["model"][key]["mean"]
        line += f"; {level}% intervals cover {coverage:.1%} (mean width {width:.4g})"
    return line


def datasets_table() -> str:
    """The bundled data sets as a plain-text table, with whether each can load here."""
    from deepcast import datasets

    rows = []
    for name in datasets.names():
        info = datasets.info(name)
        rows.append(
            {
                "name": name,
                "frequency": info.frequency,
                "rows": f"{info.rows:,}",
                "target": info.target,
                "covariates": ", ".join(info.covariates),
                "source": info.source,
                "licence": info.licence,
                "available": "yes" if info.available() else datasets.EXTRA_HINT,
            }
        )
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in rows[0]}
    lines = ["  ".join(f"{c:<{widths[c]}}" for c in widths)]
    lines += ["  ".join(f"{row[c]:<{widths[c]}}" for c in widths) for row in rows]
    return "\n".join(line.rstrip() for line in lines)
