"""Optuna engine: TPE or random sampling, median or Hyperband pruning on the per-epoch
validation loss, the study in a database.

Each trial suggests its values from the `SearchSpace` (conditional entries only when their
condition holds), trains through the engine-neutral objective and reports every epoch's
validation loss (`trial.report`); when the pruner says so, the report hook returns "stop" and
the trial ends as PRUNED with the epochs it trained recorded.

Storage: by default a SQLite file `optuna.db` in the search directory, so a search killed
mid-way continues where it stopped (finished trials are kept, the trial that was running is
run again, none is repeated). Any SQLAlchemy URL (`postgresql://user@host/db`) lets several
machines work on one study; there, trials whose process died are noticed by Optuna's
heartbeat and run again.

>>> trials = search(space, objective, algorithm="tpe", pruner="median", max_trials=20,
...                 epochs=20, seed=0, directory="runs/x/tuning")
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from deepcast.errors import ConfigError, DeepcastError
from deepcast.tuning import objective as states
from deepcast.tuning.objective import Objective, TrialRecord
from deepcast.tuning.space import Choice, Float, Int, SearchSpace

logger = logging.getLogger(__name__)

ALGORITHMS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
STUDY = "deepcast"
DATABASE = "optuna.db"  # the default storage, inside the search directory
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class _TrialFailed(Exception):
    """A trial that raised or diverged: recorded FAILED, the search goes on."""


def default_storage(directory: str | Path) -> str:
    return f"sqlite:///{(Path(directory) / DATABASE).resolve()}"


def started(directory: str | Path, storage: str | None = None) -> bool:
    """Whether the study already has trials (the resume check of tuning.tune)."""
    if storage is None and not (Path(directory) / DATABASE).exists():
        return False
    try:
        study = optuna.load_study(study_name=STUDY, storage=_storage(directory, storage))
    except KeyError:
        return False
    return bool(study.trials)


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict:
    """One value per active entry of `space`, suggested by `trial` (fixed ones as given)."""
    values: dict = {}
    for p in space:
        if not space.active(p.name, values):
            continue
        if isinstance(p, Int):
            values[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
        elif isinstance(p, Float):
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, Choice) and len(p.values) == 1:
            values[p.name] = p.values[0]
        else:
            values[p.name] = trial.suggest_categorical(p.name, list(p.values))
    return space.typed(values)


def make_sampler(algorithm: str, seed: int, max_trials: int | None) -> optuna.samplers.BaseSampler:
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna's default (10 random trials first) would spend a small budget on random points.
    startup = max(2, min(10, (max_trials or 20) // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(
    pruner: str | None, epochs: int, max_trials: int | None
) -> optuna.pruners.BasePruner:
    if pruner in (None, "none"):
        return optuna.pruners.NopPruner()
    if pruner == "median":
        startup = max(2, min(5, (max_trials or 20) // 5))
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    raise ValueError(f"unknown pruner {pruner!r}")  # tune() checks user input first


def search(
    space: SearchSpace,
    objective: Objective,
    *,
    algorithm: str = "tpe",
    pruner: str | None = "median",
    max_trials: int,
    epochs: int,
    seed: int,
    directory: str | Path,
    storage: str | optuna.storages.BaseStorage | None = None,
    overwrite: bool = False,
) -> list[dict]:
    """Run (or continue) the study and return every trial as a `TrialRecord` dict.

    A DeepcastError raised by `objective` ends the search and is raised again as itself (its
    trial is run again on resume); other errors mark that trial FAILED and the search goes on.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    url = _storage(directory, storage)
    if overwrite:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=STUDY, storage=url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = _load(url)
    done = 0 if existing is None else len(existing.trials)
    # A fresh seed per session: a resumed search must not draw the first session's values again.
    study = optuna.create_study(
        study_name=STUDY,
        storage=url,
        direction="minimize",
        sampler=make_sampler(algorithm, seed + done, max_trials),
        pruner=make_pruner(pruner, epochs, max_trials),
        load_if_exists=True,
    )
    if storage is None:
        _requeue_interrupted(study, running_is_dead=True)
    else:
        _requeue_interrupted(study, running_is_dead=False)
    remaining = max_trials - _counted(study)
    if done:
        logger.info(
            "resuming the study in %s: %d trials so far, %d to go", url, done, max(remaining, 0)
        )
    start = time.perf_counter()

    def run(trial: optuna.Trial) -> float:
        hp = suggest(trial, space)
        trial.set_user_attr("epochs", epochs)

        def report(record: dict, checkpoint) -> str | None:
            loss = record.get("val_loss")
            if loss is None or not math.isfinite(loss):
                return None
            trial.report(loss, record["epoch"])
            return "stop" if trial.should_prune() else None

        try:
            outcome = objective(hp, epochs, seed, report=report)
        except (DeepcastError, KeyboardInterrupt):
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as exc:  # diverged, out of memory, ...: this trial only
            trial.set_user_attr("message", f"{type(exc).__name__}: {exc}")
            raise _TrialFailed(str(exc)) from exc
        trial.set_user_attr("epochs_trained", outcome.epochs_trained)
        trial.set_user_attr("best_epoch", outcome.best_epoch)
        if outcome.epochs_trained and outcome.train_seconds is not None:
            spe = round(outcome.train_seconds / outcome.epochs_trained, 4)
            trial.set_user_attr("seconds_per_epoch", spe)
        if outcome.pruned:
            raise optuna.TrialPruned(f"pruned after {outcome.epochs_trained} epochs")
        if not math.isfinite(outcome.score):
            trial.set_user_attr("message", f"validation loss is {outcome.score}")
            raise _TrialFailed(f"validation loss is {outcome.score}")
        return outcome.score

    def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = _status(trial)
        result = f"val_loss {trial.value:.4g}" if state == states.COMPLETED else state.lower()
        try:
            best = f"best {study.best_value:.4g} (trial {study.best_trial.number})"
        except ValueError:
            best = "no best yet"
        logger.info(
            "trial %d/%d: %s after %s epochs | %s | %s | elapsed %.1fs",
            trial.number + 1,
            max_trials,
            result,
            trial.user_attrs.get("epochs_trained", "?"),
            best,
            " ".join(f"{k}={_short(v)}" for k, v in trial.params.items()),
            time.perf_counter() - start,
        )

    if remaining > 0:
        study.optimize(
            run,
            n_trials=remaining,
            catch=(_TrialFailed,),
            callbacks=[
                _stop_at(max_trials),
                log_trial,
            ],
            gc_after_trial=False,
        )
    return trials_table(study, space)


def trials_table(study: optuna.Study, space: SearchSpace) -> list[dict]:
    """Every trial of the study in number order, as `TrialRecord` dicts."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else None
    rows = []
    for t in trials:
        status = _status(t)
        seconds = finished = None
        if t.datetime_start is not None and t.datetime_complete is not None:
            seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 3)
            finished = round((t.datetime_complete - origin).total_seconds(), 3)
        values = dict(t.params)
        for name, value in space.fixed().items():
            if space.active(name, values):
                values.setdefault(name, value)
        attrs = t.user_attrs
        rows.append(
            TrialRecord(
                trial_id=str(t.number),
                number=t.number + 1,
                # A trial killed before its values were all drawn holds only some of them.
                hyperparameters=space.typed(values)
                if len(values) >= _needed(space, values)
                else {k: v for k, v in values.items() if k in space},
                score=t.value if status == states.COMPLETED else None,
                status=status,
                seconds=seconds,
                epochs=attrs.get("epochs"),
                epochs_trained=attrs.get("epochs_trained"),
                best_epoch=attrs.get("best_epoch"),
                seconds_per_epoch=attrs.get("seconds_per_epoch"),
                finished_at=finished,
                message=attrs.get("message"),
            ).to_dict()
        )
    return rows


def _needed(space: SearchSpace, values: dict) -> int:
    """How many values a complete trial with these values holds (conditional entries aside)."""
    return sum(1 for p in space if not p.when or space.active(p.name, values))


def _status(trial: optuna.trial.FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE:
        return states.COMPLETED
    if trial.state == TrialState.PRUNED:
        return states.PRUNED
    if trial.state == TrialState.RUNNING:
        return states.RUNNING
    if trial.user_attrs.get("interrupted"):
        return states.INTERRUPTED
    return states.FAILED


def _counted(study: optuna.Study) -> int:
    """Trials that used up the budget: finished ones, not those cut short by their process."""
    trials = study.get_trials(deepcopy=False)
    return sum(t.state in _FINISHED and not t.user_attrs.get("interrupted") for t in trials)


def _stop_at(max_trials: int):
    """Ends `optimize` once the study holds `max_trials` finished trials, counting those
    of every machine working on it (each process's own `n_trials` cannot know of the others)."""

    def callback(study: optuna.Study, trial) -> None:
        if _counted(study) >= max_trials:
            study.stop()

    return callback


def _requeue_interrupted(study: optuna.Study, running_is_dead: bool) -> None:
    """Queue again the trials that were under way when their process stopped.

    With the default SQLite file only this process uses the study, so a RUNNING trial is one
    whose process was killed; with a shared database it may be alive on another machine, and
    Optuna's heartbeat (see `_storage`) marks the dead ones FAILED for us.
    """
    storage = study._storage
    trials = study.get_trials(deepcopy=False)
    rerun = {t.user_attrs.get("rerun_of") for t in trials}
    for t in trials:
        if t.state == TrialState.RUNNING and running_is_dead:
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            continue
        if t.number not in rerun and t.params:  # no values drawn yet: nothing to run again
            study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number})


def _storage(directory: str | Path, storage: str | None):
    if storage is None:
        return default_storage(directory)
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage  # e.g. InMemoryStorage(): nothing kept on disk
    if not isinstance(storage, str) or "://" not in storage:
        raise ConfigError(
            "storage must be a database URL, e.g. sqlite:///runs/x/optuna.db or "
            f"postgresql://user@host/db. Received: {storage!r}"
        )
    # Heartbeats let a study shared by several machines notice a trial whose process died;
    # Optuna then marks it failed and queues its values again.
    return optuna.storages.RDBStorage(
        storage,
        heartbeat_interval=30,
        grace_period=120,
        failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
    )


def _load(url) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=STUDY, storage=url)
    except KeyError:
        return None


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
