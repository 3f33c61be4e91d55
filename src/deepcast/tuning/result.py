"""`TuningResult`: every trial of a search, the best one, and how to retrain it.

>>> result = dc.tune(train, val, target="y", directory="runs/x/tuning")
>>> print(result.table(k=5))
>>> f = dc.Forecaster(**result.best_forecaster_args()).fit(train, val, **result.best_fit_args())
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

from deepcast.errors import ConfigError, DeepcastError
from deepcast.tuning.space import SearchSpace, trial_arguments

OBJECTIVE = "val_loss"


@dataclass
class TuningResult:
    """A finished (or resumed and finished) search.

    `trials`: one dict per trial in start order — `trial_id`, `number`, `hyperparameters`,
    `score` (best validation loss, scaled units; None unless completed), `status`
    (objective.STATUSES: "COMPLETED", "PRUNED", "FAILED", ...; KerasTuner may add its own),
    `seconds`, `epochs` (budget), `epochs_trained`, `best_epoch`, `seconds_per_epoch` (time
    inside the training loop per epoch trained, over every execution of the trial),
    `finished_at` (seconds from the search's start to the trial's end).

    `tolerance` chooses between accuracy and training cost: 0 (the default) makes the trial
    with the lowest validation loss the best; 0.02 makes the best the trial that trains
    fastest (seconds per epoch, as measured in the search) among those whose loss is within
    2% of the lowest. Bigger networks and smaller batches often win a search by a hair while
    costing several times as much per epoch; this is in the spirit of the one-standard-error
    rule of model selection, with the tolerance stated up front instead of estimated.
    """

    algorithm: str
    trials: list[dict]
    search_space: SearchSpace
    target: str
    forecaster_args: dict
    epochs: int
    batch_size: int
    seed: int
    max_trials: int | None
    directory: Path
    settings: dict = field(default_factory=dict)
    tolerance: float = 0.0
    engine: str = "keras_tuner"  # which engine ran the search (tuning.ENGINES)

    def __post_init__(self):
        self.check_tolerance(self.tolerance)

    @staticmethod
    def check_tolerance(tolerance) -> None:
        ok = isinstance(tolerance, Real) and not isinstance(tolerance, bool)
        if not (ok and 0 <= tolerance < 1):
            raise ConfigError(
                f"tolerance must be a fraction in [0, 1), e.g. 0.02 for 2%; got {tolerance!r}"
            )

    @property
    def completed(self) -> list[dict]:
        """Completed trials, best first (ties keep the earlier trial)."""
        done = [t for t in self.trials if t["status"] == "COMPLETED" and t["score"] is not None]
        return sorted(done, key=lambda t: (t["score"], t["number"]))

    @property
    def search_name(self) -> str:
        """ "random" for KerasTuner's (as always), "optuna tpe", "ray pbt" for the others."""
        return self.algorithm if self.engine == "keras_tuner" else f"{self.engine} {self.algorithm}"

    @property
    def percent(self) -> str:
        """The tolerance as people write it: 0.005 -> '0.5%'."""
        return f"{self.tolerance * 100:g}%"

    @property
    def lowest(self) -> dict | None:
        """The completed trial with the lowest validation loss, or None if none completed."""
        done = self.completed
        return done[0] if done else None

    @property
    def best(self) -> dict | None:
        """The chosen trial: the lowest validation loss, or with a `tolerance`, the fastest
        trial within it (ties go to the lower loss). None if no trial completed."""
        done = self.completed  # lowest loss first
        if not done:
            return None
        lowest = done[0]
        if self.tolerance == 0 or _seconds_per_epoch(lowest) == math.inf:
            return lowest  # an untimed lowest (an old search resumed) cannot be out-timed
        limit = lowest["score"] + self.tolerance * abs(lowest["score"])
        near = [t for t in done if t["score"] <= limit]
        return min(near, key=lambda t: (_seconds_per_epoch(t), t["score"], t["number"]))

    def best_hyperparameters(self) -> dict:
        best = self.best
        if best is None:
            failed = sum(t["status"] != "COMPLETED" for t in self.trials)
            raise DeepcastError(
                f"hyperparameter search in {self.directory}: no trial completed "
                f"({failed} failed); see tuning.json for the messages"
            )
        return dict(best["hyperparameters"])

    def best_forecaster_args(self) -> dict:
        """Keyword arguments for `Forecaster(...)`: the search's fixed arguments with the best
        trial's hyperparameters (all but `batch_size`, which is a fit argument) and seed.

        >>> dc.Forecaster(**result.best_forecaster_args())
        """
        hp = self.best_hyperparameters()
        hp.pop("batch_size", None)
        args = trial_arguments(self.forecaster_args, hp)
        return {"target": self.target, **args, "seed": self.seed}

    def best_fit_args(self) -> dict:
        """Keyword arguments for `Forecaster.fit`: the best trial's batch size and the search's
        epoch budget (with early stopping, as in the trials).

        >>> forecaster.fit(train, validation=val, **result.best_fit_args())
        """
        hp = self.best_hyperparameters()
        return {"epochs": self.epochs, "batch_size": hp.get("batch_size", self.batch_size)}

    def to_json(self) -> dict:
        """Plain JSON: what `tuning.json` holds."""
        best, lowest = self.best, self.lowest
        return {
            "engine": self.engine,
            "algorithm": self.algorithm,
            "objective": {"name": OBJECTIVE, "direction": "min"},
            "selection": {
                "rule": "lowest loss" if self.tolerance == 0 else "fastest within tolerance",
                "tolerance": self.tolerance,
                "lowest": None if lowest is None else lowest["trial_id"],
            },
            "max_trials": self.max_trials,
            "epochs": self.epochs,
            "seed": self.seed,
            "search_space": self.search_space.to_json(),
            "n_trials": len(self.trials),
            "n_completed": len(self.completed),
            "trials": [_json_safe(t) for t in self.trials],
            "best": None if best is None else _json_safe(best),
            "best_forecaster_args": None if best is None else self.best_forecaster_args(),
            "best_fit_args": None if best is None else self.best_fit_args(),
            "directory": str(self.directory),
        }

    def table(self, k: int = 5) -> str:
        """The top `k` completed trials as a plain-text table, lowest loss first (and the
        chosen trial, marked *, even when it ranks below `k`)."""
        completed = self.completed
        rows = completed[:k]
        if not rows:
            return f"no completed trials (of {len(self.trials)})"
        best = self.best
        chosen = best["trial_id"]
        if all(t["trial_id"] != chosen for t in rows):
            rows.append(best)
        ranks = {t["trial_id"]: rank for rank, t in enumerate(completed, start=1)}
        names = list(self.search_space.names)
        header = ["rank", "trial", OBJECTIVE, *names, "epochs", "trained", "seconds", "s/epoch"]
        cells = [
            [
                str(ranks[t["trial_id"]]),
                str(t["trial_id"]) + ("*" if t["trial_id"] == chosen else ""),
                _fmt(t["score"]),
                *(_fmt(t["hyperparameters"].get(n)) for n in names),
                str(t.get("epochs", "")),
                _fmt(t.get("epochs_trained")),
                _fmt(t.get("seconds")),
                _fmt(_seconds_per_epoch(t)),
            ]
            for t in rows
        ]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
        shown = f"top {min(k, len(completed))} of {len(self.trials)} trials"
        if len(rows) > k:
            shown += " and the chosen one"
        lines = [
            f"{shown} by validation loss ({self.search_name} search; lower is better; * = chosen"
            + (
                f": fastest per epoch within {self.percent} of the lowest):"
                if self.tolerance
                else "):"
            ),
            "  ".join(h.rjust(w) for h, w in zip(header, widths)),
        ]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)


def _seconds_per_epoch(trial: dict) -> float:
    """Training cost of a trial's configuration; unknown (a search saved before training
    time was recorded: trial seconds over epochs trained) sorts last."""
    if trial.get("seconds_per_epoch") is not None:
        return trial["seconds_per_epoch"]
    seconds, epochs = trial.get("seconds"), trial.get("epochs_trained")
    if seconds is None or not epochs:
        return math.inf
    return seconds / epochs


def _fmt(value) -> str:
    if value is None or value == math.inf:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _json_safe(trial: dict) -> dict:
    """Floats that JSON can hold (no NaN/inf: `tuning.json` is written with allow_nan=False)."""
    out = {}
    for key, value in trial.items():
        if isinstance(value, dict):
            value = _json_safe(value)
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, float):
            value = float(value)  # numpy float64 -> float
        out[key] = value
    return out
