"""Champion/challenger retraining of a served model on its recent history.

The production version (the champion) is refit in its own configuration, starting from its
own weights, on the stored observations (those since a drift alarm, or the newest `rows`):
the oldest 60% train it, the next 20% stop it early, and the newest 20% (the held-out
stretch) score challenger and champion on the same forecasts. The challenger is published as
a new version either way, and promoted only if its RMSE there is lower. Every step is an
event: `retrain_started`, `challenger_scored`, then `promoted` or `rejected`
(`retrain_failed` if it cannot finish).

It runs in its own process (`deepcast retrain`, started by the service's monitor or by hand),
never in a request; the service's workers follow the promotion within their watch interval.

>>> result = retrain(ModelStore("store"), "demand", since="2024-03-02T07:00:00")
>>> result["promoted"], result["challenger_rmse"], result["champion_rmse"]
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from deepcast.errors import ConfigError
from deepcast.forecaster import Forecaster
from deepcast.serving.store import ModelStore

logger = logging.getLogger(__name__)

HOLDOUT = 0.2
VALIDATION = 0.2


def retrain(
    store: ModelStore,
    name: str,
    since: str | None = None,
    rows: int | None = None,
    epochs: int = 30,
    reason: str = "manual",
    verbose: bool = False,
) -> dict:
    """Refit `name`'s production configuration on its stored observations from `since` on
    (a timestamp; all of them by default), at most the newest `rows`; publish the
    challenger; promote it if it beats the champion on the newest held-out stretch."""
    db = store.db
    version = store.alias(name)
    if version is None:
        raise ConfigError(f"model {name!r} has no production version to retrain")
    champion = Forecaster.load(store.path(name, version))
    newest = db.latest_observations(name, 1)
    started = {
        "reason": reason,
        "since": since,
        "until": newest[0]["timestamp"] if newest else None,
    }
    db.add_event(name, "retrain_started", started, version=version)
    try:
        frame = _history(store, champion, name, since, rows)
        train, validation, holdout = _split(frame, champion)
        challenger = Forecaster(**champion.get_params())
        # From the champion's weights: the rows since a drift alarm are too few to learn
        # the series from scratch, but enough to adjust what the champion knows.
        challenger.fit(
            train, validation=validation, epochs=epochs, verbose=verbose, warm_start=champion
        )
        before = frame.iloc[: len(train) + len(validation)]
        scores = {
            "challenger_rmse": challenger.evaluate(holdout, history=before)["rmse"],
            "champion_rmse": champion.evaluate(holdout, history=before)["rmse"],
        }
        with tempfile.TemporaryDirectory(prefix="deepcast-retrain-") as tmp:
            saved = challenger.save(Path(tmp) / "model")
            new = store.publish(saved, name, metrics={"retrain": {"reason": reason, **scores}})
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        db.add_event(name, "retrain_failed", {"reason": reason, "error": first}, version=version)
        raise
    detail = {
        "champion": version,
        **scores,
        "rows": {"train": len(train), "validation": len(validation), "holdout": len(holdout)},
        "first": frame.index[0].isoformat(),
        "last": frame.index[-1].isoformat(),
    }
    db.add_event(name, "challenger_scored", detail, version=new)
    promoted = scores["challenger_rmse"] < scores["champion_rmse"]
    if promoted:
        store.promote(name, new)  # the `promoted` event
    else:
        db.add_event(
            name,
            "rejected",
            {"champion": version, "reason": "no better on the held-out rows"},
            version=new,
        )
    return {"model": name, "champion": version, "challenger": new, "promoted": promoted, **detail}


def _history(store, champion: Forecaster, name: str, since, rows) -> pd.DataFrame:
    """The stored observations to learn from, prepared as the champion's training rows."""
    start = -(2**62)
    if since is not None:
        stamp = pd.Timestamp(since)
        start = (stamp.tz_localize("UTC") if stamp.tz is None else stamp).value
    records = store.db.observations_since(name, start, limit=rows)
    if not records:
        raise ConfigError(f"model {name!r}: no stored observations to retrain on")
    return champion._frame(records, "observations")


def _split(frame: pd.DataFrame, champion: Forecaster):
    """(train, validation, holdout): the oldest 60%, the next 20%, the newest 20%."""
    n = len(frame)
    holdout = max(int(n * HOLDOUT), champion.horizon)
    validation = max(int(n * VALIDATION), champion.horizon + 1)
    fit_rows = n - holdout - validation
    needed = champion.lookback + champion.horizon + 1
    if fit_rows < needed + champion.horizon:
        raise ConfigError(
            f"{n} stored rows are too few to retrain (lookback {champion.lookback}, horizon "
            f"{champion.horizon}): 60% of them must hold at least {needed + champion.horizon}"
        )
    return (
        frame.iloc[:fit_rows],
        frame.iloc[fit_rows : fit_rows + validation],
        frame.iloc[fit_rows + validation :],
    )
