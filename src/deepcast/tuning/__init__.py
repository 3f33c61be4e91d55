"""Hyperparameter search: one search space, KerasTuner engines, resumable, reported.

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
import hashlib
import inspect
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from deepcast import _atomic, _params
from deepcast.errors import ConfigError
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
    trial_arguments,
    tunable_names,
)

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "hyperband", "bayesian")
SETTINGS_FILE = "search.json"

__all__ = [
    "ALGORITHMS",
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
    algorithm: str = "random",
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
    """
    forecaster_args = plain_model_arguments(forecaster_args or {})
    TuningResult.check_tolerance(tolerance)
    _check_arguments(
        algorithm, max_trials, epochs, batch_size, executions_per_trial, hyperband_factor
    )
    _check_forecaster_args(forecaster_args)
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
    _check_lookback_fits(space, train, forecaster_args)

    directory = Path(directory)
    settings = {
        "algorithm": algorithm,
        "search_space": space.to_json(),
        "target": target,
        "forecaster_args": forecaster_args,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "executions_per_trial": executions_per_trial,
        "hyperband_factor": hyperband_factor,
        "data": _fingerprint(train, validation),
    }
    _check_resumable(directory, settings, overwrite)
    _atomic.write_json(directory / SETTINGS_FILE, {**settings, "max_trials": max_trials})

    from deepcast.tuning import keras_tuner_engine

    objective = _forecaster_objective(train, validation, target, forecaster_args, batch_size)
    logger.info(
        "tuning %s: %s search, up to %s trials of at most %d epochs, state in %s",
        target,
        algorithm,
        max_trials if max_trials else "all",
        epochs,
        directory,
    )
    with _quiet("deepcast.forecaster"):
        trials = keras_tuner_engine.search(
            space,
            objective,
            algorithm=algorithm,
            max_trials=max_trials,
            epochs=epochs,
            seed=seed,
            directory=directory,
            overwrite=overwrite,
            executions_per_trial=executions_per_trial,
            hyperband_factor=hyperband_factor,
        )
    return TuningResult(
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


# -- the objective: one Forecaster fit per trial ---------------------------------------------
def _forecaster_objective(train, validation, target, forecaster_args, batch_size):
    from deepcast.forecaster import Forecaster
    from deepcast.tuning.keras_tuner_engine import TrialOutcome

    def objective(hp: dict, epochs: int, seed: int) -> TrialOutcome:
        args = {**trial_arguments(forecaster_args, hp), "seed": seed}
        fit_batch = args.pop("batch_size", batch_size)
        forecaster = Forecaster(target=target, **args)
        forecaster.fit(
            train, validation=validation, epochs=epochs, batch_size=fit_batch, verbose=False
        )
        history = forecaster.history_
        if history.interrupted:  # the training loop keeps Ctrl-C to itself; stop the search
            raise KeyboardInterrupt
        losses = np.array([e.get("val_loss", np.nan) for e in history.epochs], dtype=float)
        score = float(np.nanmin(losses)) if np.isfinite(losses).any() else math.nan
        return TrialOutcome(score, len(history.epochs), history.best_epoch, history.seconds)

    return objective


# -- checks ----------------------------------------------------------------------------------
def _check_arguments(
    algorithm, max_trials, epochs, batch_size, executions_per_trial, hyperband_factor
) -> None:
    if algorithm not in ALGORITHMS:
        raise ConfigError(
            f"tuner must be one of {', '.join(ALGORITHMS)}. Received: tuner={algorithm!r}"
        )
    if max_trials is None and algorithm != "hyperband":
        raise ConfigError(f"{algorithm} search needs max_trials (only hyperband has its own)")
    values = {
        "max_trials": max_trials,
        "epochs": epochs,
        "batch_size": batch_size,
        "executions_per_trial": executions_per_trial,
        "hyperband_factor": hyperband_factor,
    }
    rules = {k: _params.positive_int() for k in values}
    rules["max_trials"] = _params.Rule(int, lambda v: v >= 1, "a positive integer or None")
    rules["hyperband_factor"] = _params.Rule(int, lambda v: v >= 2, "an integer >= 2")
    _params.check("tune", values, rules)


def _check_forecaster_args(forecaster_args: dict) -> None:
    from deepcast.forecaster import Forecaster

    accepted = set(inspect.signature(Forecaster).parameters) - {"target"}
    unknown = sorted(set(forecaster_args) - accepted)
    if unknown:
        raise ConfigError(
            f"tune: unknown Forecaster argument {unknown[0]!r}; accepted: "
            f"{', '.join(sorted(accepted))}"
        )


def _forecaster_defaults() -> dict:
    from deepcast.forecaster import Forecaster

    parameters = inspect.signature(Forecaster).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return json.loads(json.dumps(defaults))


def _check_lookback_fits(space: SearchSpace, train: pd.DataFrame, forecaster_args: dict):
    if "lookback" not in space:
        return
    longest = space.max_value("lookback")
    needed = longest + forecaster_args.get("horizon", 1) + 1
    if len(train) < needed:
        raise ConfigError(
            f"search space: lookback up to {longest} needs at least {needed} training rows; "
            f"the training part has {len(train)}. Narrow it, e.g. --tune lookback=12,24"
        )


def _check_resumable(directory: Path, settings: dict, overwrite: bool) -> None:
    """A search continues only with the same settings: otherwise its old trials would be
    scored on other data or another space, and mixing them would be silently wrong."""
    path = directory / SETTINGS_FILE
    from deepcast.tuning.keras_tuner_engine import PROJECT

    started = (directory / PROJECT / "oracle.json").exists()
    if overwrite or not started or not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return  # unreadable: KerasTuner's own state decides
    current = json.loads(json.dumps(settings))  # tuples -> lists, as stored
    # An argument spelled out at its default is the same search as one left out (searches
    # saved before a Forecaster argument existed stay resumable).
    defaults = _forecaster_defaults()
    for state in (previous, current):
        state["forecaster_args"] = {**defaults, **(state.get("forecaster_args") or {})}
    changed = [k for k in current if previous.get(k) != current[k]]
    if changed:
        raise ConfigError(
            f"{directory}: holds a search with a different {', '.join(changed)}; "
            "pass --overwrite (overwrite=True) to start afresh, or use another run directory"
        )


def _fingerprint(train: pd.DataFrame, validation: pd.DataFrame) -> dict:
    digest = hashlib.sha256()
    for part in (train, validation):
        digest.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
        digest.update(",".join(map(str, part.columns)).encode())
    return {
        "train_rows": len(train),
        "validation_rows": len(validation),
        "sha256": digest.hexdigest()[:16],
    }


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
