"""The engine-neutral objective: one Forecaster fit per trial, reporting every epoch.

Every engine (KerasTuner, Optuna, Ray Tune) asks the same question — "how good is this
configuration after at most `epochs` epochs?" — and some want to listen in while it trains:
Optuna and ASHA to stop a poor trial early (`report` returns "stop"), population-based
training to save the run and continue a better trial's run with new hyperparameters
(`restore`). The engines translate their own trial states into ours (`STATUSES`), so a
`TuningResult` reads the same whichever engine filled it.

>>> objective = ForecasterObjective(train, val, target="y", forecaster_args={"lookback": 24})
>>> outcome = objective({"units": 32, "dropout": 0.1}, epochs=10, seed=0)
>>> outcome.score, outcome.epochs_trained
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

COMPLETED, PRUNED, FAILED, RUNNING, INTERRUPTED = (
    "COMPLETED",
    "PRUNED",
    "FAILED",
    "RUNNING",
    "INTERRUPTED",
)
# COMPLETED: trained to its budget (or early stopping) and scored; PRUNED: stopped early by the
# engine, not scored; FAILED: raised or diverged; RUNNING: under way; INTERRUPTED: was under
# way when its process stopped (run again on resume).
STATUSES = (COMPLETED, PRUNED, FAILED, RUNNING, INTERRUPTED)


@dataclass
class TrialOutcome:
    """What one training run reports: its best validation loss and how it got there."""

    score: float
    epochs_trained: int = 0
    best_epoch: int | None = None
    train_seconds: float | None = None  # inside the training loop only: no data set-up
    pruned: bool = False  # the engine's report hook stopped it
    losses: list[float] = field(default_factory=list)  # validation loss per epoch trained


# (hyperparameters, epochs, seed) -> outcome; raises KeyboardInterrupt to stop the search.
# Engines that prune or exploit also pass `report=` (an `on_epoch` hook of training.train) and
# `restore=` (a training.Checkpoint).
Objective = Callable[..., TrialOutcome]


@dataclass
class TrialRecord:
    """One trial as `tuning.json` holds it, whatever the engine.

    `score`: best validation loss (scaled units), None unless COMPLETED; `epochs`: the budget;
    `epochs_trained`: what ran (fewer when pruned or stopped early); `finished_at`: seconds
    from the start of the search to the end of this trial (for best-loss-over-time curves).
    """

    trial_id: str
    number: int
    hyperparameters: dict
    score: float | None
    status: str
    seconds: float | None = None
    epochs: int | None = None
    epochs_trained: int | None = None
    best_epoch: int | None = None
    seconds_per_epoch: float | None = None
    finished_at: float | None = None
    message: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown trial status {self.status!r}; one of {STATUSES}")
        if self.score is not None and not math.isfinite(self.score):
            self.score = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if out["message"] is None:
            del out["message"]
        return out


class ForecasterObjective:
    """Fits a `Forecaster` with one trial's hyperparameters on `train`, early stopping on
    `validation`; the score is the lowest validation loss. Picklable, so Ray can ship it.

    `train_through`: no early stopping, every trial trains its whole epoch budget. Population-
    based training needs that: its members are retired by exploitation (a better member's
    checkpoint replaces theirs), and a member that stopped on its own patience leaves the
    population with its budget unspent (measured: 33 of 400 epochs spent, budget 400).
    """

    def __init__(
        self,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        target: str,
        forecaster_args: dict,
        batch_size: int = 64,
        train_through: bool = False,
    ):
        self.train, self.validation, self.target = train, validation, target
        self.forecaster_args, self.batch_size = dict(forecaster_args), batch_size
        self.train_through = train_through

    def forecaster(self, hp: dict, seed: int):
        """The unfitted Forecaster of one trial and its batch size."""
        from deepcast.forecaster import Forecaster
        from deepcast.tuning.space import trial_arguments

        args = {**trial_arguments(self.forecaster_args, hp), "seed": seed}
        batch_size = args.pop("batch_size", self.batch_size)
        return Forecaster(target=self.target, **args), batch_size

    def __call__(self, hp: dict, epochs: int, seed: int, *, report=None, restore=None):
        from deepcast import training

        forecaster, batch_size = self.forecaster(hp, seed)
        if self.train_through:
            forecaster.patience = epochs + 1  # never reached: the budget ends training
        with training.hooks(on_epoch=report, restore=restore):
            forecaster.fit(
                self.train,
                validation=self.validation,
                epochs=epochs,
                batch_size=batch_size,
                verbose=False,
            )
        history = forecaster.history_
        if history.interrupted:  # the training loop keeps Ctrl-C to itself; stop the search
            raise KeyboardInterrupt
        losses = np.array([e.get("val_loss", np.nan) for e in history.epochs], dtype=float)
        score = float(np.nanmin(losses)) if np.isfinite(losses).any() else math.nan
        return TrialOutcome(
            score,
            len(history.epochs),
            history.best_epoch,
            history.seconds,
            pruned=history.pruned,
            losses=[float(v) for v in losses],
        )
