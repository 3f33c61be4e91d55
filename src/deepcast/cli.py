"""`deepcast` command line: parses arguments and calls the public API, nothing more.

Exit codes: 0 done; 2 bad input or usage (one line naming the file, column or row).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deepcast.errors import DeepcastError

logger = logging.getLogger("deepcast")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except DeepcastError as exc:
        print(f"deepcast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepcast: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepcast", description="Explainable deep-learning forecasting of time series."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the whole job on the built-in synthetic data")
    demo.add_argument("--out", default="runs/demo", type=Path)
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--max-trials", type=int, default=4, help="tuning trials before the final fit (0: none)"
    )
    demo.set_defaults(handler=_demo)

    run = commands.add_parser("run", help="fit, evaluate and save a forecaster on a file")
    _data_arguments(run)
    _model_arguments(run)
    run.add_argument("--out", default="runs/run", type=Path)
    _tuning_arguments(run)
    run.set_defaults(handler=_run)

    backtest = commands.add_parser(
        "backtest", help="rolling-origin backtest: expanding-window folds, per-fold metrics"
    )
    _data_arguments(backtest)
    _model_arguments(backtest)
    backtest.add_argument("--folds", type=int, default=5)
    backtest.add_argument(
        "--fold-size", type=int, default=None, help="test rows per fold (default: 10%% of rows)"
    )
    backtest.add_argument(
        "--no-retrain",
        dest="retrain",
        action="store_false",
        help="train once on the first fold's rows instead of once per fold",
    )
    backtest.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="run the folds as Ray tasks on this cluster ('local': a Ray instance here)",
    )
    backtest.add_argument("--out", default="runs/backtest", type=Path)
    backtest.set_defaults(handler=_backtest)

    datasets = commands.add_parser("datasets", help="the bundled real data sets, as a table")
    datasets.set_defaults(handler=_datasets)

    model_list = commands.add_parser(
        "models", help="the model families with their options (type, default, range, search)"
    )
    model_list.set_defaults(handler=_models)

    explain = commands.add_parser("explain", help="attribute a saved model's forecasts")
    explain.add_argument("--model", required=True, type=Path, help="a saved model directory")
    _data_arguments(explain, target=False)
    explain.add_argument(
        "--method",
        default="integrated-gradients",
        help="one method or several, comma-separated: integrated-gradients (ig), saliency, "
        "gradient-x-input, smoothgrad, occlusion, shap, attention (models that declare it)",
    )
    explain.add_argument("--steps", type=int, default=64, help="IG integration steps")
    explain.add_argument("--max-windows", type=int, default=512, help="newest forecasts only")
    explain.add_argument("--out", default="runs/explain", type=Path)
    explain.set_defaults(handler=_explain)

    anomalies = commands.add_parser(
        "anomalies", help="flag observations outside a saved model's one-step-ahead interval"
    )
    anomalies.add_argument("--model", required=True, type=Path, help="a saved model directory")
    _data_arguments(anomalies, target=False)
    anomalies.add_argument(
        "--level", type=float, default=99, help="interval level in percent (default 99)"
    )
    anomalies.add_argument(
        "--out", default="runs/anomalies", type=Path, help="where anomalies.csv and .png go"
    )
    anomalies.set_defaults(handler=_anomalies)
    _serving_commands(commands)
    return parser


def _data_arguments(parser: argparse.ArgumentParser, target: bool = True) -> None:
    """--data and how to prepare it. `target=False` (explain): the saved model says which
    columns it reads, so --target and --features are not asked for."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        required=True,
        help="CSV or Parquet file, or the name of a bundled data set (see `deepcast datasets`)",
    )
    if target:
        group.add_argument(
            "--target",
            default=None,
            help="column to forecast (default for a bundled data set: its own)",
        )
        group.add_argument(
            "--features",
            default=None,
            help="comma-separated input columns besides the target (default: every other "
            "numeric column; 'none': the target's own history only)",
        )
    group.add_argument("--time-col", default=None, help="timestamp column (default: detected)")
    group.add_argument(
        "--fill",
        nargs="?",
        const="interpolate",
        default=False,
        choices=["interpolate", "forward"],
        help="insert missing timestamps and fill NaN/inf instead of failing: interpolate in "
        "time (the default) or carry the last value forward (uses no later row)",
    )
    group.add_argument(
        "--resample", default=None, metavar="RULE", help="aggregate to a coarser step: 1h, D, W"
    )
    group.add_argument(
        "--aggregate",
        default="mean",
        choices=["mean", "sum", "min", "max", "first", "last"],
        help="how --resample combines numeric rows (default: mean)",
    )


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--lookback", type=int, default=48)
    group.add_argument("--horizon", type=int, default=1)
    group.add_argument(
        "--model", default="lstm", help="model family (see `deepcast models`), or 'auto'"
    )
    group.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one of the model's options (repeatable): --model-option filters=32",
    )
    group.add_argument(
        "--auto-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --model auto: stop starting new candidates after this long (default 900)",
    )
    group.add_argument("--units", type=int, default=None, help="shorthand for the option")
    group.add_argument("--layers", type=int, default=None, help="shorthand for the option")
    group.add_argument("--dropout", type=float, default=None, help="shorthand for the option")
    group.add_argument(
        "--window-norm",
        action="store_true",
        help="standardise each window's target by its own mean and std (for drifting levels)",
    )
    group.add_argument(
        "--no-baseline-start",
        dest="baseline_start",
        action="store_false",
        help="train the network on the whole series instead of on what its best baseline "
        "misses (docs/models.md)",
    )
    group.add_argument("--learning-rate", type=float, default=1e-3)
    group.add_argument(
        "--lr-patience",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="halve the learning rate after this many epochs without a lower validation loss",
    )
    group.add_argument(
        "--loss",
        default=None,
        choices=["mse", "mae", "huber", "quantile", "gaussian", "student_t", "negative_binomial"],
        help="training loss (default: the model's own, see `deepcast models`; else mse); "
        "quantile, gaussian and student_t give the model an output head of quantiles or a "
        "distribution; negative_binomial one of counts (deepar)",
    )
    group.add_argument(
        "--levels",
        default="80,95",
        metavar="L1,L2",
        help="prediction-interval levels in percent, scored on the hold-out and drawn as "
        "bands (default 80,95; 'none' for point forecasts only)",
    )
    group.add_argument(
        "--intervals",
        default=None,
        choices=["conformal", "aci", "mc_dropout", "quantile", "distribution", "samples"],
        help="how intervals are made (default: conformal, calibrated on the validation part "
        "and saved with the model; deepar: its sample paths); quantile and distribution train "
        "that output head",
    )
    group.add_argument("--epochs", type=int, default=50)
    group.add_argument("--batch-size", type=int, default=64)
    group.add_argument(
        "--seasonal-period",
        default=None,
        metavar="N[,N...]",
        help="seasonal period(s) in rows, primary first (default: from the timestamps)",
    )
    group.add_argument(
        "--calendar", action="store_true", help="add hour/day-of-week sine-cosine inputs"
    )
    group.add_argument("--seed", type=int, default=0)


def _load_data(args, target: str | None = None, features: list[str] | None = None):
    """The prepared frame, its target and a label for messages, from --data (a file or a
    bundled data set's name). A given `target` (and its `features`) overrides the command
    line's: `explain` takes them from the saved model."""
    from deepcast import datasets
    from deepcast.data.io import read_table
    from deepcast.data.prepare import prepare
    from deepcast.errors import ConfigError, DataError

    if target is None:
        target, features = args.target, _features(args)
    path = Path(args.data)
    if path.exists():
        if target is None:
            raise ConfigError(f"--target is required for a data file ({args.data})")
        df, source = read_table(path, time_col=args.time_col), path.name
    elif args.data in datasets.names():
        df, source = datasets.load(args.data), args.data
        target = target or datasets.info(args.data).target
    else:
        raise DataError(
            f"{args.data}: no such file, nor a bundled data set (those are: "
            f"{', '.join(datasets.names())})"
        )
    frame = prepare(
        df,
        target,
        features,
        resample=args.resample,
        how=args.aggregate,
        fill=args.fill,
        source=source,
    )
    return frame, target, source


def _features(args) -> list[str] | None:
    """--features: None (every column), [] ('none': target only) or the named columns."""
    from deepcast.errors import ConfigError

    if args.features is None:
        return None
    if args.features.strip().lower() == "none":
        return []
    names = [c.strip() for c in args.features.split(",")]
    if not args.features.strip() or any(not name for name in names):
        raise ConfigError(
            f"--features {args.features!r} has an empty column name; name the columns "
            "(--features temp,humidity), 'none' for the target's own history only, or leave "
            "--features out for every column"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"--features names {repeated[0]!r} twice")
    if args.target is not None and args.target in names:
        raise ConfigError(
            f"--features names the target {args.target!r}; its history is always an input"
        )
    return names


def _model_options(args) -> dict:
    """--model-option KEY=VALUE pairs, each value checked by the model's own declaration."""
    from deepcast import models
    from deepcast.errors import ConfigError
    from deepcast.tuning.space import parse_scalar

    options = {}
    for item in args.model_option:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not value.strip():
            raise ConfigError(f"--model-option expects KEY=VALUE (e.g. units=32). Received: {item}")
        if key in options:
            raise ConfigError(f"--model-option {key} is given twice")
        try:
            options[key] = parse_scalar(value)
        except ConfigError:
            options[key] = value.strip()  # a string option, e.g. kind=generic
    if args.model != "auto":
        models.configure(args.model, options)  # unknown or invalid options fail here
    return options


def _forecaster_args(args) -> dict:
    from deepcast.errors import ConfigError

    period = None
    if args.seasonal_period:
        try:
            periods = [int(p) for p in args.seasonal_period.split(",")]
        except ValueError:
            raise ConfigError(
                f"--seasonal-period must be integers such as 24 or 24,168. "
                f"Received: {args.seasonal_period!r}"
            ) from None
        period = periods[0] if len(periods) == 1 else periods
    loss, quantiles = _loss_for_intervals(args)
    return {
        "lookback": args.lookback,
        "horizon": args.horizon,
        "model": args.model,
        "model_options": _model_options(args),
        "features": _features(args),
        "units": args.units,
        "layers": args.layers,
        "dropout": args.dropout,
        "window_norm": args.window_norm,
        "baseline_start": args.baseline_start,
        "learning_rate": args.learning_rate,
        "lr_patience": args.lr_patience,
        "loss": loss,
        "quantiles": quantiles,
        "seasonal_period": period,
        "calendar": args.calendar,
        "seed": args.seed,
    }


def _levels(args) -> list[float]:
    from deepcast.errors import ConfigError

    text = getattr(args, "levels", "none") or "none"
    if text.strip().lower() == "none":
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--levels must be percentages such as 80,95, or none. Received: {text!r}"
        ) from None


def _loss_for_intervals(args) -> tuple[str, tuple | None]:
    """--intervals quantile trains quantiles that cover --levels; distribution a Gaussian
    head unless --loss student_t asks for heavier tails."""
    from deepcast.errors import ConfigError
    from deepcast.evaluation.probabilistic import level_quantiles

    method, loss = getattr(args, "intervals", None), args.loss
    allowed = {
        "quantile": (None, "mse", "quantile"),
        "distribution": (None, "mse", "gaussian", "student_t", "negative_binomial"),
    }
    if method in allowed:
        if loss not in allowed[method]:
            raise ConfigError(f"--intervals {method} trains its own loss; drop --loss {loss}")
        loss = method if method == "quantile" else ("gaussian" if loss in (None, "mse") else loss)
    quantiles = None
    if loss == "quantile":
        quantiles = tuple(q for level in _levels(args) for q in level_quantiles(level)) or None
    return loss, quantiles


TUNER_NAMES = [
    "keras-random",
    "keras-hyperband",
    "keras-bayesian",
    "optuna-tpe",
    "optuna-random",
    "ray-asha",
    "ray-pbt",
]


def _tuning_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameter search")
    group.add_argument(
        "--tuner",
        default="none",
        choices=["none", "random", "hyperband", "bayesian", *TUNER_NAMES],
        help="engine-algorithm (random/hyperband/bayesian: the keras- ones)",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="HOST:PORT",
        help="run the ray-asha/ray-pbt search on this Ray cluster (default: a local one)",
    )
    group.add_argument("--max-trials", type=int, default=10)
    group.add_argument("--tuning-epochs", type=int, default=20, help="epoch budget per trial")
    group.add_argument("--search-space", type=Path, default=None, help="JSON search space")
    group.add_argument(
        "--tune",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="narrow one hyperparameter: units=16:128:log, lookback=24,48 or dropout=0.1",
    )
    group.add_argument(
        "--tuning-tolerance",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="keep the fastest-training trial within this fraction of the lowest validation "
        "loss (0.02 = 2%%) instead of the lowest itself",
    )
    group.add_argument("--overwrite", action="store_true", help="start the search afresh")


def _tuning_options(args):
    from deepcast.pipeline import TuningOptions
    from deepcast.tuning import parse_assignments

    if args.tuner == "none":
        if args.tuning_tolerance:
            from deepcast.errors import ConfigError

            raise ConfigError("--tuning-tolerance chooses among search trials: add --tuner random")
        if args.ray_address:
            from deepcast.errors import ConfigError

            raise ConfigError("--ray-address runs a search: add --tuner ray-asha or ray-pbt")
        return None
    return TuningOptions(
        algorithm=args.tuner,
        max_trials=args.max_trials,
        epochs=args.tuning_epochs,
        search_space=args.search_space,
        narrow=parse_assignments(args.tune) or None,
        overwrite=args.overwrite,
        tolerance=args.tuning_tolerance,
        address=args.ray_address,
    )


def _demo(args) -> int:
    from deepcast import datasets, pipeline

    df, truth = datasets.synthetic(seed=args.seed, return_truth=True)
    print(f"deepcast demo: synthetic hourly data, {len(df)} rows, columns {list(df.columns)}")
    print(f"planted truth: y is driven by {', '.join(f'{f} lag {lag}' for f, lag in truth.cells)}")
    # A small, bounded search so the demo stays quick; `deepcast run --tuner` searches the
    # full default space.
    tuning = None
    if args.max_trials > 0:
        tuning = pipeline.TuningOptions(
            algorithm="random",
            max_trials=args.max_trials,
            epochs=8,
            narrow={
                "layers": {"low": 1, "high": 2},
                "units": {"low": 16, "high": 64, "log": True},
                "lookback": [24, 48],
                "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
                "batch_size": [64],
            },
        )
    result = pipeline.run(
        df,
        target="y",
        out=args.out,
        forecaster_args={"lookback": 48, "horizon": 1, "seed": args.seed},
        epochs=args.epochs,
        tuning=tuning,
        source=f"synthetic(seed={args.seed})",
        levels=[80, 95],
    )
    _report(result)
    print("explaining the hold-out forecasts with Integrated Gradients...")
    report = pipeline.explain(
        result.forecaster, result.parts[2], args.out, truth_cells=list(truth.cells)
    )
    print(pipeline.explanation_summary(report))
    print(f"wrote {args.out}/attributions.json, attributions.png, attributions_window.png")
    return 0


def _run(args) -> int:
    from deepcast import pipeline

    df, target, source = _load_data(args)
    result = pipeline.run(
        df,
        target=target,
        out=args.out,
        forecaster_args=_forecaster_args(args),
        epochs=args.epochs,
        batch_size=args.batch_size,
        tuning=_tuning_options(args),
        source=source,
        auto_budget=args.auto_budget,
        levels=_levels(args),
        interval_method=args.intervals,
    )
    _report(result)
    return 0


def _backtest(args) -> int:
    from deepcast import pipeline
    from deepcast.errors import ConfigError

    if args.model == "auto":
        raise ConfigError(
            "--model auto chooses a family in `deepcast run`; a backtest scores one family: "
            "--model NAME (see `deepcast models`)"
        )

    df, target, source = _load_data(args)
    result = pipeline.backtest(
        df,
        target=target,
        out=args.out,
        forecaster_args=_forecaster_args(args),
        folds=args.folds,
        fold_size=args.fold_size,
        retrain=args.retrain,
        epochs=args.epochs,
        batch_size=args.batch_size,
        source=source,
        levels=_levels(args),
        interval_method=args.intervals,
        ray_address=args.ray_address,
    )
    print(result.table())
    skill = pipeline.backtest_summary(result)
    if skill:
        print(skill)
    print(f"wrote {args.out}/backtest.json, backtest.png")
    return 0


def _models(args) -> int:
    from deepcast.models.table import table

    print(table())
    return 0


def _datasets(args) -> int:
    from deepcast.pipeline import datasets_table

    print(datasets_table())
    return 0


def _explain(args) -> int:
    from deepcast.explain import report
    from deepcast.forecaster import Forecaster

    methods = report.parse_methods(args.method)  # an unknown method fails before any work
    forecaster = Forecaster.load(args.model)
    df, _, _ = _load_data(args, forecaster.target, forecaster.input_columns[1:])
    written = report.write_explanations(
        forecaster, df, args.out, methods, steps=args.steps, max_windows=args.max_windows
    )
    print(report.summary(written))
    print(f"wrote {args.out}/" + ", ".join(report.written(written)))
    return 0


def _anomalies(args) -> int:
    from deepcast.forecaster import Forecaster
    from deepcast.uncertainty.anomaly_plot import write_anomalies

    forecaster = Forecaster.load(args.model)
    df, target, source = _load_data(args, forecaster.target, forecaster.input_columns[1:])
    table = forecaster.anomalies(df, level=args.level)
    write_anomalies(table, args.out, target=target, level=args.level)
    print(
        f"{int(table['is_anomaly'].sum())} of {len(table)} observations of {source} flagged "
        f"outside the {args.level:g}% one-step-ahead interval; wrote {args.out}/anomalies.csv, "
        "anomalies.png"
    )
    return 0


def _report(result) -> None:
    from deepcast.pipeline import metrics_table

    if result.tuning is not None:
        print(result.tuning.table())
        print(f"wrote {result.out}/tuning.json, tuning.png")
    if result.selection is not None:
        print(result.selection.table())
    history = result.forecaster.history_
    print(
        f"trained {len(history.epochs)} epochs in {history.seconds:.1f}s "
        f"(best epoch {history.best_epoch}" + (", interrupted" if history.interrupted else "") + ")"
    )
    print(f"hold-out ({result.metrics['n_forecasts']} forecasts, original units):")
    print(metrics_table(result.metrics))
    report = result.metrics.get("intervals")
    if report:
        levels = [k.removeprefix("coverage_") for k in report if k.startswith("coverage_")]
        parts = [
            f"{level}% covers {report[f'coverage_{level}']:.1%} (mean width "
            f"{report[f'width_{level}']:.4g})"
            for level in levels
        ]
        print(f"{report['method'].replace('_', ' ')} intervals: " + "; ".join(parts))
    also = ", interpretation.png" if result.forecaster.model_name == "tft" else ""
    print(f"wrote {result.out}/metrics.json, forecast.png{also}, model/")


# -- serving: publish, promote, serve ------------------------------------------------------------
_DATABASE_HELP = (
    "postgresql://USER@HOST:PORT/DB: the store's database, for servers sharing one store "
    "(recorded in the store when it is created; default: SQLite in the store)"
)


def _serving_commands(commands) -> None:
    publish = commands.add_parser("publish", help="add a saved model to a model store")
    publish.add_argument("--model", required=True, type=Path, help="a saved model directory")
    publish.add_argument("--store", required=True, type=Path, help="the model store directory")
    publish.add_argument("--name", required=True, help="the model's name in the store")
    publish.add_argument(
        "--promote", action="store_true", help="make the new version production at once"
    )
    publish.add_argument("--database", default=None, help=_DATABASE_HELP)
    publish.set_defaults(handler=_publish)

    promote = commands.add_parser(
        "promote", help="point a model's production alias at a version (or roll it back)"
    )
    promote.add_argument("--store", required=True, type=Path)
    promote.add_argument("--name", required=True)
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="the version to serve")
    which.add_argument(
        "--rollback", action="store_true", help="back to the version served before this one"
    )
    promote.set_defaults(handler=_promote)

    serve = commands.add_parser("serve", help="serve a model store over HTTP (FastAPI)")
    serve.add_argument("--store", required=True, type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--database", default=None, help=_DATABASE_HELP)
    serve.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help="keys for writes, one per line (default: $DEEPCAST_API_KEY)",
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=2 * 1024 * 1024, help="request body limit"
    )
    serve.add_argument(
        "--retrain",
        choices=("drift", "off"),
        default="drift",
        help="retrain a model after a drift alarm (off: record drift only)",
    )
    serve.add_argument(
        "--retrain-rows",
        type=int,
        default=None,
        help="rows after a drift alarm before retraining (default 8 x (lookback + horizon), "
        "at least 500)",
    )
    serve.add_argument(
        "--retrain-every", type=int, default=None, help="also retrain every that many rows"
    )
    serve.add_argument("--retrain-epochs", type=int, default=30, help="epochs of a retraining")
    serve.set_defaults(handler=_serve)

    retrain = commands.add_parser(
        "retrain",
        help="refit a served model on its stored observations; promote it only if it wins",
    )
    retrain.add_argument("--store", required=True, type=Path)
    retrain.add_argument("--name", required=True)
    retrain.add_argument("--since", default=None, help="learn from observations from this time on")
    retrain.add_argument("--rows", type=int, default=None, help="at most the newest ROWS rows")
    retrain.add_argument("--epochs", type=int, default=30)
    retrain.add_argument("--reason", default="manual", help=argparse.SUPPRESS)
    retrain.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # the monitor's
    retrain.set_defaults(handler=_retrain)

    events = commands.add_parser("events", help="a served model's events, oldest first")
    events.add_argument("--store", required=True, type=Path)
    events.add_argument("--name", required=True)
    events.add_argument("--limit", type=int, default=50)
    events.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    events.set_defaults(handler=_events)


def _publish(args) -> int:
    from deepcast.serving.store import ModelStore, read_metrics

    store = ModelStore(args.store, database=args.database)
    version = store.publish(args.model, args.name, metrics=read_metrics(args.model))
    if args.promote and store.alias(args.name) != version:
        store.promote(args.name, version)
    print(
        f"published {args.model} as {args.name} version {version} in {args.store} "
        f"(production: {store.alias(args.name)})"
    )
    return 0


def _promote(args) -> int:
    from deepcast.serving.store import ModelStore

    store = ModelStore(args.store, create=False)
    if args.rollback:
        version = store.rollback(args.name)
        print(f"rolled {args.name} back to version {version}")
    else:
        previous = store.promote(args.name, args.version)
        print(f"{args.name}: production is version {args.version} (was {previous})")
    return 0


def _retrain(args) -> int:
    from deepcast.serving.retrain import retrain
    from deepcast.serving.store import ModelStore

    store = ModelStore(args.store, create=False)
    try:
        result = retrain(
            store,
            args.name,
            since=args.since,
            rows=args.rows,
            epochs=args.epochs,
            reason=args.reason,
            verbose=True,
        )
    finally:
        if args.job:  # started by the service's monitor: free its slot for the next one
            from deepcast.serving.ledger import Ledger

            Ledger(store.db).release_job(args.name)
    verdict = "promoted" if result["promoted"] else "rejected (production unchanged)"
    print(
        f"{args.name}: challenger version {result['challenger']} RMSE "
        f"{result['challenger_rmse']:.4g} vs champion version {result['champion']} "
        f"{result['champion_rmse']:.4g} on the newest {result['rows']['holdout']} rows: {verdict}"
    )
    return 0


def _events(args) -> int:
    import json

    from deepcast.serving.store import ModelStore, check_name

    store = ModelStore(args.store, create=False)
    events = store.db.events(check_name(args.name), limit=args.limit)
    if args.json:
        for event in events:
            print(json.dumps(event))
        return 0
    if not events:
        print(f"no events for {args.name} in {args.store}")
    for event in events:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items() if v is not None)
        print(f"{event['time']}  {event['type']:<18} v{event['version'] or '-':<4} {detail}")
    return 0


def _serve(args) -> int:
    import os

    from deepcast.errors import ConfigError
    from deepcast.serving.security import read_keys
    from deepcast.serving.store import ModelStore

    try:
        import uvicorn
    except ImportError:
        from deepcast.errors import MissingExtraError

        raise MissingExtraError("deepcast serve needs uvicorn: pip install uvicorn") from None
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1. Received: {args.workers}")
    ModelStore(args.store, create=False, database=args.database)  # ConfigError now
    keys = read_keys(args.api_key_file)
    if not keys:
        logger.warning("no API key (--api-key-file or DEEPCAST_API_KEY): writes are disabled")
    os.environ["DEEPCAST_STORE"] = str(args.store.resolve())
    os.environ["DEEPCAST_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    os.environ["DEEPCAST_RETRAIN"] = args.retrain
    os.environ["DEEPCAST_RETRAIN_EPOCHS"] = str(args.retrain_epochs)
    for key, value in (("ROWS", args.retrain_rows), ("EVERY", args.retrain_every)):
        if value is not None and value < 1:
            raise ConfigError(f"--retrain-{key.lower()} must be at least 1. Received: {value}")
        os.environ[f"DEEPCAST_RETRAIN_{key}"] = "" if value is None else str(value)
    if args.api_key_file is not None:
        os.environ["DEEPCAST_API_KEY_FILE"] = str(args.api_key_file.resolve())
    uvicorn.run(
        "deepcast.serving.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        # A worker imports torch and Keras before it answers the supervisor's health check;
        # uvicorn's default 5 s restarts it in a loop on a busy machine.
        timeout_worker_healthcheck=60,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
