"""The checks of `tuning.tune`: arguments per engine, the Forecaster arguments, whether the
lookback fits the data, and whether a search directory may be resumed with these settings.

Every check raises `ConfigError` with one line naming the argument and the value received.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import pandas as pd

from deepcast import _params
from deepcast.errors import ConfigError
from deepcast.tuning.space import SearchSpace

PRUNERS = ("median", "hyperband", "none")
SETTINGS_FILE = "search.json"


def engine_options(engine, algorithm, pruner, storage, address, cpus_per_trial):
    """The engine-specific arguments; returns the pruner in effect."""
    if pruner is not None and engine != "optuna":
        raise ConfigError(f"pruner is an Optuna setting; the {engine} engine prunes on its own")
    if storage is not None and engine != "optuna":
        raise ConfigError("storage is where an Optuna study lives; add engine='optuna'")
    if address is not None and engine != "ray":
        raise ConfigError("a Ray address needs the ray engine (--tuner ray-asha or ray-pbt)")
    _params.check(
        "tune",
        {"cpus_per_trial": cpus_per_trial},
        {"cpus_per_trial": _params.Rule(float, lambda v: v > 0, "a positive number")},
    )
    if engine != "optuna":
        return None
    pruner = "median" if pruner is None else pruner
    if pruner not in PRUNERS:
        raise ConfigError(
            f"pruner must be one of {', '.join(PRUNERS)}. Received: pruner={pruner!r}"
        )
    return pruner


def arguments(
    engine, algorithm, max_trials, epochs, batch_size, executions_per_trial, hyperband_factor
) -> None:
    if max_trials is None and algorithm != "hyperband":
        raise ConfigError(f"{algorithm} search needs max_trials (only hyperband has its own)")
    if executions_per_trial != 1 and engine != "keras_tuner":
        raise ConfigError("executions_per_trial is a KerasTuner setting; leave it at 1")
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


def check_forecaster_args(forecaster_args: dict) -> None:
    from deepcast.forecaster import Forecaster

    accepted = set(inspect.signature(Forecaster).parameters) - {"target"}
    unknown = sorted(set(forecaster_args) - accepted)
    if unknown:
        raise ConfigError(
            f"tune: unknown Forecaster argument {unknown[0]!r}; accepted: "
            f"{', '.join(sorted(accepted))}"
        )


def forecaster_defaults() -> dict:
    from deepcast.forecaster import Forecaster

    parameters = inspect.signature(Forecaster).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return json.loads(json.dumps(defaults))


def lookback_fits(space: SearchSpace, train: pd.DataFrame, forecaster_args: dict):
    if "lookback" not in space:
        return
    longest = space.max_value("lookback")
    needed = longest + forecaster_args.get("horizon", 1) + 1
    if len(train) < needed:
        raise ConfigError(
            f"search space: lookback up to {longest} needs at least {needed} training rows; "
            f"the training part has {len(train)}. Narrow it, e.g. --tune lookback=12,24"
        )


def started(directory: Path, storage: str | None) -> bool:
    """Whether any engine has search state in `directory` (each engine knows its own), or the
    Optuna study at the database URL `storage` has trials."""
    from deepcast.tuning import keras_tuner_engine

    if keras_tuner_engine.started(directory):
        return True
    if storage is not None:
        from deepcast.tuning import optuna_engine

        return optuna_engine.started(directory, storage)
    return (directory / "optuna.db").exists() or (directory / "ray").exists()


def training_loss(forecaster_args: dict) -> str:
    """The loss a search's trials train on: `loss`, or left at None the family's own."""
    from deepcast.forecaster import Forecaster

    keys = ("model", "loss", "quantiles")
    return Forecaster(
        "target", **{k: forecaster_args[k] for k in keys if k in forecaster_args}
    ).training_loss


def resumable(directory: Path, settings: dict, overwrite: bool, started: bool) -> None:
    """A search continues only with the same settings: otherwise its old trials would be
    scored on other data or another space, and mixing them would be silently wrong."""
    path = directory / SETTINGS_FILE
    if overwrite or not started or not path.exists():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return  # unreadable: KerasTuner's own state decides
    current = json.loads(json.dumps(settings))  # tuples -> lists, as stored
    # An argument spelled out at its default is the same search as one left out (searches
    # saved before a Forecaster argument existed stay resumable).
    defaults = forecaster_defaults()
    if "training_loss" not in previous:  # saved when "mse" was every Forecaster's default loss
        saved = previous.get("forecaster_args") or {}
        previous["training_loss"] = training_loss({**saved, "loss": saved.get("loss") or "mse"})
    for state in (previous, current):
        state["forecaster_args"] = {**defaults, **(state.get("forecaster_args") or {})}
        del state["forecaster_args"]["loss"]  # compared as the loss trained on: training_loss
    previous.setdefault("engine", "keras_tuner")  # saved before there were other engines
    previous.setdefault("pruner", None)
    changed = [k for k in current if previous.get(k) != current[k]]
    if changed:
        raise ConfigError(
            f"{directory}: holds a search with a different {', '.join(changed)}; "
            "pass --overwrite (overwrite=True) to start afresh, or use another run directory"
        )


def fingerprint(train: pd.DataFrame, validation: pd.DataFrame) -> dict:
    digest = hashlib.sha256()
    for part in (train, validation):
        digest.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
        digest.update(",".join(map(str, part.columns)).encode())
    return {
        "train_rows": len(train),
        "validation_rows": len(validation),
        "sha256": digest.hexdigest()[:16],
    }
