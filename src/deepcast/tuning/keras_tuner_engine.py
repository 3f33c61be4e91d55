"""KerasTuner engine: random search, Hyperband and Bayesian optimisation over a `SearchSpace`.

KerasTuner's oracles choose the hyperparameters and keep the state on disk; each trial is one
call of an `Objective` — in deepcast, a `Forecaster` fitted with our own training loop and our
own windows (the lookback changes the windows per trial), so trials are as fast as any fit and
nothing goes through `keras.Model.fit`.

Resuming: the oracle and every finished trial live in `directory`; building the tuner again
with `overwrite=False` reloads them, a trial that was running when the process stopped is run
again, and a larger `max_trials` adds trials after the old ones.

Hyperband: `max_epochs` is the search's `epochs`, one iteration, and `max_trials` caps the
trial count. A trial promoted to more epochs trains from scratch for its new budget (simpler
than KerasTuner's checkpoint hand-over, and identical to what a retrain of it would give).

>>> trials = search(default_space(24), objective, algorithm="random", max_trials=5,
...                 epochs=20, seed=0, directory="runs/x/tuning")
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import warnings
from pathlib import Path

import keras_tuner
from keras_tuner.engine import base_tuner

from deepcast.errors import DeepcastError
from deepcast.tuning.objective import Objective, TrialOutcome  # noqa: F401 (re-exported)
from deepcast.tuning.space import Choice, Float, Int, SearchSpace

logger = logging.getLogger(__name__)

OBJECTIVE = "val_loss"
PROJECT = "keras_tuner"  # KerasTuner's project folder inside the tuning directory


def started(directory: str | Path) -> bool:
    """Whether `directory` holds a KerasTuner search (the resume check of tuning.tune)."""
    return (Path(directory) / PROJECT / "oracle.json").exists()


class _UserError(keras_tuner.errors.FatalError):
    """Carries a DeepcastError out of KerasTuner, which would otherwise record a failed trial."""


def hyperparameters(space: SearchSpace) -> keras_tuner.HyperParameters:
    """The KerasTuner equivalent of `space`.

    >>> hyperparameters(default_space(24)).space[0]
    Int(name: 'layers', min_value: 1, max_value: 3, step: 1, sampling: linear, default: 1)
    """
    hp = keras_tuner.HyperParameters()
    for p in space:
        with contextlib.ExitStack() as scopes:
            for other, allowed in p.when:  # a conditional entry: active under its parents
                scopes.enter_context(hp.conditional_scope(other, list(allowed)))
            _declare(hp, p)
    return hp


def _declare(hp: keras_tuner.HyperParameters, p) -> None:
    """Declare one entry of the space on `hp` (in the current conditional scope)."""
    sampling = "log" if getattr(p, "log", False) else "linear"
    if isinstance(p, Int):
        hp.Int(p.name, p.low, p.high, step=p.step, sampling=sampling, default=p.default)
    elif isinstance(p, Float):
        hp.Float(p.name, p.low, p.high, step=p.step, sampling=sampling, default=p.default)
    elif len(p.values) == 1:
        hp.Fixed(p.name, p.values[0])
    elif isinstance(p.values[0], bool):  # KerasTuner's Choice turns bools into 0/1
        hp.Boolean(p.name, default=bool(p.default))
    else:
        hp.Choice(p.name, list(p.values), default=p.default)


def make_oracle(
    algorithm: str,
    space: SearchSpace,
    *,
    max_trials: int | None,
    epochs: int,
    seed: int,
    hyperband_factor: int = 3,
) -> keras_tuner.Oracle:
    """A KerasTuner oracle for `algorithm` that minimises validation loss."""
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, "min"),
        "hyperparameters": hyperparameters(space),
        "allow_new_entries": False,
        "tune_new_entries": False,
        # KerasTuner reads seed 0 as "no seed" and draws a random one.
        "seed": seed + 1,
        # A failed trial (diverged, NaN) is recorded once, not re-run: same hps, same result.
        "max_retries_per_trial": 0,
    }
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if algorithm == "bayesian":
        tunable = sum(not (isinstance(p, Choice) and len(p.values) == 1) for p in space)
        # KerasTuner's default (3 random points per dimension) would spend a small budget on
        # random points only; half the budget leaves room for the Gaussian process.
        initial = max(2, min(3 * tunable, (max_trials or 20) // 2))
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=max_trials, num_initial_points=initial, **common
        )
    if algorithm == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=epochs, factor=hyperband_factor, hyperband_iterations=1, **common
        )
        oracle.max_trials = max_trials  # the base Oracle stops creating trials at this count
        return oracle
    raise ValueError(f"unknown algorithm {algorithm!r}")  # tune() checks user input first


def hyperband_trials(epochs: int, factor: int = 3) -> int:
    """Trials in one Hyperband iteration with `max_epochs=epochs` (KerasTuner's brackets)."""
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=epochs, factor=factor, seed=1)
    brackets = oracle._get_num_brackets()
    return sum(oracle._get_size(b, r) for b in range(brackets) for r in range(b + 1))


class DeepcastTuner(base_tuner.BaseTuner):
    """Runs each trial through `objective` and logs one line per trial.

    Also keeps, in KerasTuner's own tuner state file, what KerasTuner does not: each trial's
    seconds, epoch budget and epochs trained.
    """

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        objective: Objective,
        *,
        space: SearchSpace,
        epochs: int,
        seed: int,
        executions_per_trial: int,
        planned: int | None,
        directory: str | Path,
        overwrite: bool,
    ):
        self.objective, self.space, self.epochs, self.seed = objective, space, epochs, seed
        self.executions_per_trial, self.planned = executions_per_trial, planned
        self.records: dict[str, dict] = {}  # filled by set_state when reloading
        self._started: dict[str, float] = {}
        self._search_start = time.perf_counter()
        # KerasTuner prints "Reloading Tuner from ..." itself; we log our own line instead.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(
                oracle, directory=str(directory), project_name=PROJECT, overwrite=overwrite
            )
        self.oracle.verbose = 0  # its per-trial tables go to stdout via print()

    # -- one trial --------------------------------------------------------------------------
    def run_trial(self, trial, *args, **kwargs) -> dict:
        values = trial.hyperparameters.values
        budget = int(values.get("tuner/epochs", self.epochs))  # Hyperband sets the budget
        hp = self.space.typed(values)
        record = self.records.setdefault(trial.trial_id, {})
        record["epochs"] = budget
        try:
            outcomes = [
                self.objective(hp, budget, self.seed + i) for i in range(self.executions_per_trial)
            ]
        except DeepcastError as exc:
            raise _UserError(str(exc)) from exc
        score = sum(o.score for o in outcomes) / len(outcomes)
        record.update(epochs_trained=outcomes[0].epochs_trained, best_epoch=outcomes[0].best_epoch)
        epochs = sum(o.epochs_trained for o in outcomes)
        if epochs and all(o.train_seconds is not None for o in outcomes):
            # The configuration's training cost, over every execution of the trial.
            record["seconds_per_epoch"] = round(sum(o.train_seconds for o in outcomes) / epochs, 4)
        if not math.isfinite(score):
            raise keras_tuner.errors.FailedTrialError(f"validation loss is {score}")
        return {OBJECTIVE: score}

    # -- bookkeeping and progress -----------------------------------------------------------
    def on_search_begin(self):
        self._search_start = time.perf_counter()

    def on_trial_begin(self, trial):
        self._started[trial.trial_id] = time.perf_counter()

    def on_trial_end(self, trial):
        seconds = time.perf_counter() - self._started.pop(trial.trial_id, self._search_start)
        self.records.setdefault(trial.trial_id, {})["seconds"] = round(seconds, 3)
        super().on_trial_end(trial)  # scores the trial, saves oracle and tuner state
        self._log_trial(self.oracle.get_trial(trial.trial_id), seconds)

    def _log_trial(self, trial, seconds: float) -> None:
        number = self.oracle.start_order.index(trial.trial_id) + 1
        of = f"/{self.planned}" if self.planned else ""
        if trial.status == "COMPLETED":
            result = f"{OBJECTIVE} {trial.score:.4g}"
        else:
            result = f"{trial.status.lower()} ({_last_line(trial.message)})"
        best = self.oracle.get_best_trials(1)
        best_text = (
            f"best {best[0].score:.4g} (trial {best[0].trial_id})"
            if best and best[0].status == "COMPLETED"
            else "no best yet"
        )
        values = self.space.typed(trial.hyperparameters.values)
        budget = self.records.get(trial.trial_id, {}).get("epochs", self.epochs)
        params = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        elapsed = time.perf_counter() - self._search_start
        logger.info(
            "trial %d%s: %s | %s | %s epochs=%d | %.1fs, elapsed %s",
            number,
            of,
            result,
            best_text,
            params,
            budget,
            seconds,
            _duration(elapsed),
        )

    def get_state(self) -> dict:
        return {"records": self.records}

    def set_state(self, state: dict) -> None:
        self.records = dict(state.get("records", {}))


def trials_table(tuner: DeepcastTuner) -> list[dict]:
    """Every trial, in start order, as plain JSON values."""
    rows = []
    elapsed = 0.0
    for number, trial_id in enumerate(tuner.oracle.start_order, start=1):
        trial = tuner.oracle.get_trial(trial_id)
        record = tuner.records.get(trial_id, {})
        score = trial.score if trial.status == "COMPLETED" else None
        promoted = trial.hyperparameters.values.get("tuner/trial_id")
        rows.append(
            {
                "trial_id": trial_id,
                "number": number,
                "hyperparameters": tuner.space.typed(trial.hyperparameters.values),
                "score": score if score is not None and math.isfinite(score) else None,
                "status": trial.status,
                "seconds": record.get("seconds"),
                "epochs": record.get("epochs", tuner.epochs),
                "epochs_trained": record.get("epochs_trained"),
                "best_epoch": record.get("best_epoch"),
                "seconds_per_epoch": record.get("seconds_per_epoch"),
                # Trials run one after another: a trial ends when the ones before it and it did.
                "finished_at": round(elapsed := elapsed + (record.get("seconds") or 0.0), 3),
                **({"message": _last_line(trial.message)} if trial.message else {}),
                # Hyperband: this trial re-runs an earlier one's hyperparameters with more epochs.
                **({"promoted_from": promoted} if promoted else {}),
            }
        )
    return rows


def search(
    space: SearchSpace,
    objective: Objective,
    *,
    algorithm: str,
    max_trials: int | None,
    epochs: int,
    seed: int,
    directory: str | Path,
    overwrite: bool = False,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
) -> list[dict]:
    """Run (or continue) a search in `directory` and return every trial (`trials_table`).

    A DeepcastError raised by `objective` (bad data for a lookback, ...) ends the search and
    is raised again as itself; other errors mark that trial failed and the search goes on.
    """
    oracle = make_oracle(
        algorithm,
        space,
        max_trials=max_trials,
        epochs=epochs,
        seed=seed,
        hyperband_factor=hyperband_factor,
    )
    planned = max_trials
    if algorithm == "hyperband":
        natural = hyperband_trials(epochs, hyperband_factor)
        planned = min(natural, max_trials) if max_trials else natural
    tuner = DeepcastTuner(
        oracle,
        objective,
        space=space,
        epochs=epochs,
        seed=seed,
        executions_per_trial=executions_per_trial,
        planned=planned,
        directory=directory,
        overwrite=overwrite,
    )
    done = sum(t.status != "RUNNING" for t in tuner.oracle.trials.values())
    if done:
        logger.info("resuming the search in %s: %d trials done, up to %s", directory, done, planned)
    try:
        with warnings.catch_warnings():
            # The Bayesian oracle's Gaussian process warns whenever a length scale reaches
            # its bound, which on a handful of trials is most of the time and means nothing.
            warnings.filterwarnings("ignore", module="sklearn.gaussian_process")
            tuner.search()
    except _UserError as exc:
        raise exc.__cause__ from None
    return trials_table(tuner)


def _last_line(message: str | None) -> str:
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
