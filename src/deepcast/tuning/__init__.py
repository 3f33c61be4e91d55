"""Hyperparameter search: one search space, three engines, resumable, reported.

Engines (`engine=`, each in its own module behind the objective of `tuning/objective.py`):
`"keras_tuner"` (random, hyperband, bayesian; the default), `"optuna"` (tpe, random; pruner
median or hyperband; the study in SQLite or any database URL) and `"ray"` (asha, pbt; local or
on the Ray cluster at `address=`). CLI-style names pick both: `algorithm="optuna-tpe"`.

Each trial builds a `Forecaster` with the trial's hyperparameters and fits it on `train` with
early stopping on `validation`; its score is the best validation loss (scaled units). The
state lives in `directory`, so running the same call again continues the search.

>>> import deepcast as dc
>>> train, val, test = dc.split(dc.datasets.synthetic(seed=0))
>>> result = tune(train, val, target="y", algorithm="random", max_trials=10,
...               directory="runs/tuned/tuning", narrow={"units": (16, 64)})
>>> print(result.table())
>>> f = dc.Forecaster(**result.best_forecaster_args())
>>> f.fit(train, validation=val, **result.best_fit_args()).evaluate(test)["rmse"]
>>> write_report(result, "runs/tuned")    # tuning.json + tuning.png
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pandas as pd

from deepcast import _atomic
from deepcast.errors import ConfigError, MissingExtraError
from deepcast.tuning import checks
from deepcast.tuning.checks import PRUNERS, SETTINGS_FILE
from deepcast.tuning.objective import ForecasterObjective
from deepcast.tuning.result import TuningResult
from deepcast.tuning.space import (
    Choice,
    Float,
    Int,
    SearchSpace,
    check_for_model,
    default_space,
    parse_assignments,
    plain_model_arguments,
    tunable_names,
)

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "hyperband", "bayesian")  # KerasTuner's, the default engine
ENGINES = {
    "keras_tuner": ALGORITHMS,
    "optuna": ("tpe", "random"),
    "ray": ("asha", "pbt"),
}
# `--tuner` names: engine and algorithm in one word (today's bare names stay KerasTuner's).
TUNERS = {
    **{name: ("keras_tuner", name) for name in ALGORITHMS},
    **{f"keras-{name}": ("keras_tuner", name) for name in ALGORITHMS},
    "optuna-tpe": ("optuna", "tpe"),
    "optuna-random": ("optuna", "random"),
    "ray-asha": ("ray", "asha"),
    "ray-pbt": ("ray", "pbt"),
}

__all__ = [
    "ALGORITHMS",
    "ENGINES",
    "PRUNERS",
    "TUNERS",
    "Choice",
    "Float",
    "Int",
    "SearchSpace",
    "TuningResult",
    "default_space",
    "parse_assignments",
    "resolve_space",
    "tunable_names",
    "tune",
    "write_report",
]


def tune(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    target: str,
    directory: str | Path,
    forecaster_args: dict | None = None,
    algorithm: str | None = None,
    max_trials: int | None = 10,
    search_space: SearchSpace | dict | str | Path | None = None,
    narrow: dict | None = None,
    overwrite: bool = False,
    epochs: int = 20,
    batch_size: int = 64,
    seed: int | None = None,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
    tolerance: float = 0.0,
    engine: str | None = None,
    pruner: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
) -> TuningResult:
    """Search the Forecaster's hyperparameters; return every trial and the best.

    `forecaster_args`: the fixed Forecaster arguments (lookback, horizon, features, ...); the
    search space's values replace them in each trial. `search_space`: a `SearchSpace` is used
    as given; a dict or JSON file replaces entries of the default space; `narrow` then
    replaces entries again (see `SearchSpace.narrow`). `batch_size` is used when the space
    does not tune it. `seed` (default: forecaster_args' seed, else 0) seeds the oracle and
    every trial's Forecaster, so a search is reproducible.

    Budget: `max_trials` trials of at most `epochs` epochs each (early stopping inside each).
    Hyperband's budget is one iteration with `max_epochs=epochs` (its brackets train many
    short trials and promote the best to more epochs); `max_trials` caps its trial count.

    `tolerance` (a fraction, default 0): the best trial is the one that trains fastest per
    epoch among those within `tolerance` of the lowest validation loss (see `TuningResult`).
    It only chooses among finished trials, so changing it never invalidates a saved search;
    the choice rests on measured times, so it is as repeatable as the machine is quiet.

    `directory` holds the search state: the same call again resumes (a trial that was running
    is run again; a larger `max_trials` adds trials); `overwrite=True` starts afresh.

    `engine`: "keras_tuner" (default), "optuna" or "ray"; `algorithm` one of that engine's
    (`ENGINES`; default random, tpe, asha) or a `TUNERS` name naming both ("optuna-tpe").
    Optuna: `pruner` "median" (default), "hyperband" or "none" on per-epoch validation loss;
    `storage` a database URL (default: SQLite `optuna.db` in `directory`). Ray: `address` of
    a running cluster (default: a local one), `cpus_per_trial` CPUs (and torch threads) each
    trial holds; ASHA stops poor trials at epochs 1, 3, 9, ...; PBT perturbs learning rate,
    dropout and batch size and continues better trials' checkpoints.
    """
    forecaster_args = plain_model_arguments(forecaster_args or {})
    TuningResult.check_tolerance(tolerance)
    engine, algorithm = resolve_engine(engine, algorithm)
    pruner = checks.engine_options(engine, algorithm, pruner, storage, address, cpus_per_trial)
    checks.arguments(
        engine, algorithm, max_trials, epochs, batch_size, executions_per_trial, hyperband_factor
    )
    checks.check_forecaster_args(forecaster_args)
    seed = int(forecaster_args.get("seed", 0) if seed is None else seed)
    model = forecaster_args.get("model", "lstm")
    space = resolve_space(
        search_space,
        narrow,
        train=train,
        seasonal_period=forecaster_args.get("seasonal_period"),
        model=model,
    )
    check_for_model(space, model)
    checks.lookback_fits(space, train, forecaster_args)
    if "model" in space and "loss" not in space and forecaster_args.get("loss") is None:
        # Trials of several families are ranked on one loss (their own ones would not compare).
        forecaster_args = {**forecaster_args, "loss": "mse"}

    directory = Path(directory)
    settings = {
        "engine": engine,
        "algorithm": algorithm,
        "pruner": pruner,
        "search_space": space.to_json(),
        "target": target,
        "forecaster_args": forecaster_args,
        "training_loss": checks.training_loss(forecaster_args),
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "executions_per_trial": executions_per_trial,
        "hyperband_factor": hyperband_factor,
        "data": checks.fingerprint(train, validation),
    }
    _require_engine(engine)  # before anything is written
    checks.resumable(directory, settings, overwrite, checks.started(directory, storage))
    _atomic.write_json(directory / SETTINGS_FILE, {**settings, "max_trials": max_trials})

    objective = ForecasterObjective(
        train, validation, target, forecaster_args, batch_size, train_through=algorithm == "pbt"
    )
    logger.info(
        "tuning %s: %s %s search, up to %s trials of at most %d epochs, state in %s",
        target,
        engine,
        algorithm,
        max_trials if max_trials else "all",
        epochs,
        directory,
    )
    common = {
        "algorithm": algorithm,
        "max_trials": max_trials,
        "epochs": epochs,
        "seed": seed,
        "directory": directory,
        "overwrite": overwrite,
    }
    with _quiet("deepcast.forecaster"):
        if engine == "optuna":
            from deepcast.tuning import optuna_engine

            trials = optuna_engine.search(
                space, objective, pruner=pruner, storage=storage, **common
            )
        elif engine == "ray":
            from deepcast.tuning import ray_engine

            trials = ray_engine.search(
                space, objective, address=address, cpus_per_trial=cpus_per_trial, **common
            )
        else:
            from deepcast.tuning import keras_tuner_engine

            trials = keras_tuner_engine.search(
                space,
                objective,
                executions_per_trial=executions_per_trial,
                hyperband_factor=hyperband_factor,
                **common,
            )
    return TuningResult(
        engine=engine,
        algorithm=algorithm,
        trials=trials,
        search_space=space,
        target=target,
        forecaster_args=forecaster_args,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        max_trials=max_trials,
        directory=directory,
        settings=settings,
        tolerance=tolerance,
    )


def write_report(result: TuningResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `tuning.json` and `tuning.png` into `out_dir` (atomically)."""
    from deepcast.tuning.report import write_report as _write

    return _write(result, out_dir)


def resolve_space(
    search_space: SearchSpace | dict | str | Path | None = None,
    narrow: dict | None = None,
    *,
    train: pd.DataFrame | None = None,
    seasonal_period: int | list[int] | None = None,
    model: str = "lstm",
) -> SearchSpace:
    """The search space a run uses: `model`'s default for the data's seasonal period, updated
    by a dict or JSON file, then by `narrow` (e.g. parsed `--tune NAME=SPEC` flags).

    >>> resolve_space("space.json", parse_assignments(["units=16:64"]), seasonal_period=24)
    """
    if isinstance(search_space, SearchSpace):
        space = search_space
    else:
        if isinstance(seasonal_period, (list, tuple)):  # several periods: the primary one
            seasonal_period = seasonal_period[0] if seasonal_period else None
        period = seasonal_period or _seasonal_period(train)
        space = default_space(period, model)
        if search_space is not None:
            space = SearchSpace.from_json(search_space, base=space)
    if narrow:
        space = space.narrow(**narrow)
    if not space.params:
        raise ConfigError("search space: nothing left to tune (every entry was removed)")
    return space


def resolve_engine(engine: str | None, algorithm: str | None) -> tuple[str, str]:
    """(engine, algorithm) from either or both; ConfigError naming the valid ones.

    >>> resolve_engine(None, "optuna-tpe"), resolve_engine("ray", None)
    (('optuna', 'tpe'), ('ray', 'asha'))
    """
    if algorithm in TUNERS and (engine is None or "-" in algorithm):
        named_engine, named = TUNERS[algorithm]
        if engine not in (None, named_engine):
            raise ConfigError(
                f"tuner {algorithm!r} runs on the {named_engine} engine. "
                f"Received: engine={engine!r}"
            )
        return named_engine, named
    engine = engine or "keras_tuner"
    if engine not in ENGINES:
        raise ConfigError(
            f"engine must be one of {', '.join(ENGINES)}. Received: engine={engine!r}"
        )
    algorithm = algorithm or ENGINES[engine][0]
    if algorithm not in ENGINES[engine]:
        valid = ENGINES[engine] if engine != "keras_tuner" else tuple(TUNERS)
        raise ConfigError(f"tuner must be one of {', '.join(valid)}. Received: tuner={algorithm!r}")
    return engine, algorithm


def _seasonal_period(train: pd.DataFrame | None) -> int | None:
    if train is None or not isinstance(train.index, pd.DatetimeIndex):
        return None
    from deepcast.errors import DataError
    from deepcast.evaluation.baselines import infer_seasonal_period

    try:
        return infer_seasonal_period(train.index)
    except DataError:
        return None


@contextlib.contextmanager
def _quiet(name: str):
    """Silence one logger's INFO lines (each trial's "training lstm on N windows")."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _require_engine(engine: str) -> None:
    """MissingExtraError naming what to install when an engine's package is absent."""
    package = {"optuna": "optuna", "ray": "ray.tune"}.get(engine)
    if package is None:
        return
    import importlib.util

    if importlib.util.find_spec(package.partition(".")[0]) is None:
        raise MissingExtraError(
            f"engine {engine!r} needs the {package.partition('.')[0]} package: "
            "pip install 'deepcast[tuning]'"
        )
