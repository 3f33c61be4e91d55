"""`model="auto"`: train several model families on the same split and keep the one with the
lowest validation loss, within a time budget; every candidate is reported.

The linear families go first: they train in seconds, they are the strongest long-horizon
baselines of the literature, and `nlinear` contains the naive forecast (all weights zero), so
the choice always has a candidate that is hard to lose with. A candidate starts only while
the budget lasts and trains for what is left of it (`fit(time_limit=)`: the epoch under way
finishes); `nlinear` always runs, and at least one epoch of it.

>>> result = select_model(train, val, target="y", forecaster_args={"lookback": 48})
>>> print(result.table())
>>> result.forecaster.evaluate(test)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd

from deepcast.errors import ConfigError, DeepcastError
from deepcast.forecaster import Forecaster

logger = logging.getLogger(__name__)

AUTO = "auto"
CANDIDATES = ("nlinear", "dlinear", "lstm", "cnn_lstm", "transformer")
ALWAYS = "nlinear"
BUDGET_SECONDS = 900.0


@dataclass
class Selection:
    """The chosen, fitted forecaster and one row per candidate (trained, failed or skipped)."""

    forecaster: Forecaster
    candidates: list[dict] = field(default_factory=list)
    budget_seconds: float = BUDGET_SECONDS

    @property
    def chosen(self) -> str:
        return self.forecaster.model_name

    def to_json(self) -> dict:
        check = self.forecaster.validation_check_
        return {
            "chosen": self.chosen,
            "budget_seconds": self.budget_seconds,
            "candidates": self.candidates,
            "baselines": None if check is None else check.baselines,
            "loss": None if check is None else check.loss,
        }

    def table(self) -> str:
        check = self.forecaster.validation_check_
        lines = [f"model selection on validation {check.loss} (lower is better; * = chosen):"]
        for row in self.candidates:
            mark = "*" if row["model"] == self.chosen and row["status"] == "trained" else " "
            loss = "-" if row.get("val_loss") is None else f"{row['val_loss']:.4g}"
            seconds = "" if row.get("seconds") is None else f"{row['seconds']:.1f}s"
            lines.append(f"  {mark} {row['model']:<16}{loss:>10}  {seconds:>8}  {row['status']}")
        for name, value in check.baselines.items():
            lines.append(f"    {name + ' (baseline)':<16}{value:>10.4g}")
        return "\n".join(lines)


def select_model(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    *,
    target: str,
    forecaster_args: dict | None = None,
    candidates: tuple[str, ...] = CANDIDATES,
    budget_seconds: float = BUDGET_SECONDS,
    epochs: int = 50,
    batch_size: int = 64,
    verbose: bool | None = None,
) -> Selection:
    """Fit each candidate family (its own default options) with `forecaster_args`' settings
    and keep the lowest validation loss. Model options and the units/layers/dropout shorthand
    are per family, so they are not allowed here."""
    from deepcast import models

    args = dict(forecaster_args or {})
    args.pop("model", None)
    per_family = [k for k in ("model_options", *models.SHORTHAND) if args.get(k)]
    if per_family:
        raise ConfigError(
            f"model auto trains every family with its own defaults; {per_family[0]} belongs to "
            "one family: choose it with --model NAME instead"
        )
    args.pop("model_options", None)
    # One loss for every candidate, or their validation losses would not compare (a family's
    # own default loss, e.g. nbeats' mae, applies when it is chosen by name).
    args["loss"] = args.get("loss") or "mse"
    order = [ALWAYS, *(c for c in candidates if c != ALWAYS)]
    for name in order:
        models.spec(name)  # unknown candidates fail before any work
    start = time.perf_counter()
    rows, fitted = [], {}
    for name in order:
        elapsed = time.perf_counter() - start
        if name != ALWAYS and elapsed >= budget_seconds:
            rows.append({"model": name, "status": f"skipped: budget of {budget_seconds:g}s spent"})
            continue
        logger.info("model auto: training %s (%.0fs of %gs spent)", name, elapsed, budget_seconds)
        began = time.perf_counter()
        try:
            forecaster = Forecaster(target=target, model=name, **args).fit(
                train,
                validation=validation,
                epochs=epochs,
                batch_size=batch_size,
                verbose=verbose,
                time_limit=max(budget_seconds - elapsed, 0.0),
            )
        except DeepcastError:
            raise  # bad data or settings: every candidate would fail the same way
        except Exception as exc:  # a family that cannot fit this data must not end the run
            rows.append({"model": name, "status": f"failed: {exc}".splitlines()[0]})
            continue
        if forecaster.history_.interrupted:
            raise KeyboardInterrupt
        fitted[name] = forecaster
        rows.append(
            {
                "model": name,
                "status": "trained",
                "val_loss": forecaster.validation_check_.model,
                "loss": forecaster.point_loss,
                "seconds": round(time.perf_counter() - began, 2),
                "epochs_trained": len(forecaster.history_.epochs),
                "out_of_time": forecaster.history_.out_of_time,
            }
        )
    if not fitted:
        raise DeepcastError("model auto: no candidate could be trained; see the log")
    best = min(fitted, key=lambda n: fitted[n].validation_check_.model)
    return Selection(fitted[best], rows, budget_seconds)
