"""Monitoring beside the request path: rolling forecasts, matured errors, drift, retraining.

After each batch of observations, the worker's monitor thread (never the request) brings the
model's ledger up to date:

1. **Rolling inference.** The live version forecasts from every origin that arrived since it
   last did (with an 80% band), and each forecast is kept in the ledger.
2. **Matured errors.** Every kept forecast whose target rows have arrived becomes one error
   per horizon step (actual - forecast).
3. **Drift.** The error detector scans the live version's one-step errors and the input
   detector its input rows (monitoring/drift.py), both from where the version went live, so a
   replaced version starts afresh. Each new alarm is one `drift` event.
4. **Retraining.** Once enough rows have arrived after a drift alarm (the new regime is what
   the challenger learns from), or every `every` rows on a schedule, a retraining process
   starts (retrain.py): at most one per model across the store's workers.

>>> monitor = Monitor(registry, RetrainPolicy(every=None))
>>> monitor.start(); monitor.notify("demand"); monitor.update("demand")  # or synchronously
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepcast.errors import ConfigError, DeepcastError
from deepcast.serving.ledger import Ledger
from deepcast.serving.registry import Registry
from deepcast.serving.runtime import ServedModel

logger = logging.getLogger(__name__)

BAND = 80  # the level of the band kept with every issued forecast (and drawn on the dashboard)
MAX_BACKFILL = 2000  # origins forecast in one update at most (a large upload of history)


@dataclass(frozen=True)
class RetrainPolicy:
    """When the monitor starts a retraining. `min_rows`: rows needed after a drift alarm
    (None: 8 x (lookback + horizon), at least 500); `every`: also retrain every that many
    rows (None: only on drift); `history`: rows a scheduled retraining learns from;
    `enabled=False` records drift but never retrains."""

    enabled: bool = True
    min_rows: int | None = None
    every: int | None = None
    history: int = 2000
    epochs: int = 30

    def rows_after_alarm(self, served: ServedModel) -> int:
        f = served.forecaster
        return self.min_rows or max(8 * (f.lookback + f.horizon), 500)

    @classmethod
    def from_env(cls) -> RetrainPolicy:
        """The policy `deepcast serve` passes to its workers (DEEPCAST_RETRAIN_*)."""

        def number(key: str) -> int | None:
            value = os.environ.get(key)
            return int(value) if value else None

        return cls(
            enabled=os.environ.get("DEEPCAST_RETRAIN", "drift") != "off",
            min_rows=number("DEEPCAST_RETRAIN_ROWS"),
            every=number("DEEPCAST_RETRAIN_EVERY"),
            history=number("DEEPCAST_RETRAIN_HISTORY") or 2000,
            epochs=number("DEEPCAST_RETRAIN_EPOCHS") or 30,
        )


class Monitor:
    """The monitoring of one worker's models (see the module doc)."""

    def __init__(self, registry: Registry, policy: RetrainPolicy | None = None):
        self.registry = registry
        self.store = registry.store
        self.ledger = Ledger(self.store.db)
        self.policy = policy or RetrainPolicy()
        self._pending: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    # -- the thread ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deepcast-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join(timeout=30)

    def notify(self, name: str) -> None:
        """New observations of `name` arrived: update it soon, off the request path."""
        self._idle.clear()
        self._pending.put(name)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            name = self._pending.get()
            if name is None:
                return
            names = {name}
            while not self._pending.empty():  # a burst of posts is one update per model
                more = self._pending.get()
                if more is None:
                    return
                names.add(more)
            for each in sorted(names):
                try:
                    self.update(each)
                except Exception:  # the monitor must outlive any one bad update
                    logger.exception("monitoring %s failed", each)
            if self._pending.empty():
                self._idle.set()

    # -- one update ------------------------------------------------------------------------
    def update(self, name: str) -> None:
        served = self.registry.active.get(name)
        if served is None:
            return
        last = self._forecast_until(served)
        frame = self._recent_frame(served, last)
        if frame is None:
            return
        self._issue_forecasts(served, frame, last)
        self._mature(served, frame)
        alarms = self._drift(served)
        if self.policy.enabled:
            self._maybe_retrain(served, alarms)

    def _recent_frame(self, served: ServedModel, last: int | None) -> pd.DataFrame | None:
        """The prepared rows that the new origins' windows (after origin `last`) and the
        maturing forecasts need."""
        f, db = served.forecaster, self.store.db
        new = 1 if last is None else min(db.count_since(served.name, last), MAX_BACKFILL)
        rows = db.latest_observations(served.name, f.lookback + new + f.horizon)
        if len(rows) < f.lookback:
            return None
        try:
            return f._frame(rows, "observations")
        except DeepcastError as exc:  # checked on the way in; say so once rather than crash
            logger.warning("model %s: stored observations unusable: %s", served.name, exc)
            return None

    def _issue_forecasts(self, served: ServedModel, frame: pd.DataFrame, last: int | None) -> None:
        f = served.forecaster
        origins = frame.index[f.lookback - 1 :]
        fresh = np.flatnonzero(_ns(origins) > (last if last is not None else -(2**62)))
        if last is None:
            fresh = fresh[-1:]  # the first forecast of a model: from the newest origin only
        if not len(fresh):
            return
        window = frame.iloc[fresh[0] : fresh[-1] + f.lookback]
        rows = [
            (origin.value, origin.isoformat(), json.dumps(table))
            for origin, table in _forecast_table(served, window)
        ]
        self.ledger.record_forecasts(served.name, served.version, rows)

    def _forecast_until(self, served: ServedModel) -> int | None:
        """The newest origin already forecast: by this version, or for a version that just
        went live, by the one before it (so no origin is skipped at a switch)."""
        last = self.ledger.last_origin(served.name, served.version)
        return self.ledger.last_origin(served.name, None) if last is None else last

    def _mature(self, served: ServedModel, frame: pd.DataFrame) -> None:
        """Errors of every kept forecast (any version) whose targets are in `frame`."""
        target = frame[served.forecaster.target]
        actual = dict(zip(_ns(frame.index).tolist(), target.to_numpy(dtype=float).tolist()))
        rows = []
        for version, origin, steps in self.ledger.forecasts_since(
            served.name, int(_ns(frame.index)[0])
        ):
            for step in steps:
                if step.get("timestamp") is None:
                    continue
                when = _timestamp_ns(step["timestamp"])
                if when in actual:
                    row = (version, origin, step["step"], when, step["timestamp"])
                    rows.append((*row, step["value"], actual[when]))
        if rows:
            self.ledger.record_errors(served.name, rows)

    def _drift(self, served: ServedModel) -> list[dict]:
        """Scan for drift; every alarm not raised before becomes a `drift` event. Returns the
        live version's drift events."""
        from deepcast.monitoring import ErrorDrift, InputDrift

        reference = getattr(served.forecaster, "drift_reference_", None)
        name, version = served.name, served.version
        if reference is not None:
            times, errors = self.ledger.one_step_errors(name, version)
            found = [(a, int(times[a.index])) for a in ErrorDrift(reference).scan(errors)]
            live = self.ledger.first_origin(name, version)
            if live is not None:
                frame = self._input_frame(served, live, reference)
                if frame is not None:
                    scanned = InputDrift(reference).scan(frame)
                    found += [(a, int(_ns(frame.index)[a.index])) for a in scanned]
            for alarm, at in found:
                if self.ledger.claim_alarm(name, version, alarm.detector, at):
                    stamp = pd.Timestamp(at, tz="UTC")
                    if served.forecaster.preparation_.tz is None:
                        stamp = stamp.tz_localize(None)
                    detail = {
                        "at": stamp.isoformat(),
                        "detector": alarm.detector,
                        "statistic": float(alarm.statistic),
                        "threshold": float(alarm.threshold),
                        **alarm.detail,
                    }
                    self.store.db.add_event(name, "drift", detail, version=version)
                    logger.warning("drift in %s version %s: %s", name, version, detail)
        events = self.store.db.events(name, limit=1000, kinds=("drift", "retrain_started"))
        return [e for e in events if e["version"] == version]

    def _input_frame(self, served: ServedModel, live: int, reference) -> pd.DataFrame | None:
        """The input rows since the version went live, with the rows its first window read."""
        f, db = served.forecaster, self.store.db
        since_live = db.count_since(served.name, live - 1)  # rows from `live` on
        rows = db.latest_observations(served.name, since_live + reference.window)
        try:
            return f._frame(rows, "observations")
        except DeepcastError:
            return None

    def _maybe_retrain(self, served: ServedModel, events: list[dict]) -> None:
        """Start a retraining after a drift alarm once enough rows of the new regime arrived,
        or on schedule."""
        name, db = served.name, self.store.db
        started = [e for e in events if e["type"] == "retrain_started"]
        # Alarms since the last retraining; the first one dates the new regime (later ones
        # during the wait do not restart it).
        pending = [
            e
            for e in events
            if e["type"] == "drift" and (not started or e["id"] > started[-1]["id"])
        ]
        if pending:
            at = pending[0]["detail"]["at"]
            since = pd.Timestamp(at)
            since_ns = (since.tz_localize("UTC") if since.tz is None else since).value
            if db.count_since(name, since_ns) >= self.policy.rows_after_alarm(served):
                self._launch(served, reason="drift", since=at)
            return
        every = self.policy.every
        if every:
            since = self.ledger.first_origin(name, served.version)
            if started and started[-1]["detail"].get("until") is not None:
                since = max(since or 0, _timestamp_ns(started[-1]["detail"]["until"]))
            if since is not None and db.count_since(name, since) >= every:
                self._launch(served, reason="schedule", rows=self.policy.history)

    def _launch(self, served: ServedModel, reason: str, since=None, rows=None) -> None:
        """`deepcast retrain` in a child process, if no retraining of this model runs."""
        name = served.name
        if not self.ledger.claim_job(name):
            return
        logs = self.store.root / ".logs"
        logs.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "deepcast.cli", "retrain", "--store", str(self.store.root)]
        command += ["--name", name, "--reason", reason, "--job"]
        command += ["--epochs", str(self.policy.epochs)]
        if since is not None:
            command += ["--since", str(since)]
        if rows is not None:
            command += ["--rows", str(rows)]
        try:
            with open(logs / f"{name}-retrain.log", "a") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        except OSError:
            self.ledger.release_job(name)
            raise
        self.ledger.job_started(name, process.pid)
        # Reap the child when it ends (a finished child left unwaited stays a zombie).
        threading.Thread(target=process.wait, daemon=True).start()
        logger.info("retraining %s (%s) in process %d", name, reason, process.pid)


def _forecast_table(served: ServedModel, window: pd.DataFrame) -> list[tuple[pd.Timestamp, list]]:
    """(origin, [{"step", "timestamp", "value", "lo_80", "hi_80"}, ...]) for every origin of
    the prepared rows `window`, in one batched call."""
    f = served.forecaster
    try:
        table = f.predict(window, levels=[BAND])
    except ConfigError:  # no interval method for this model: the point forecast alone
        table = f.predict(window)
    out = []
    for origin, row in zip(table.index, table.to_numpy(dtype=float)):
        steps = []
        values = dict(zip(table.columns, row))
        for h in range(1, f.horizon + 1):
            when = None if served.step is None else (origin + h * served.step).isoformat()
            step = {"step": h, "timestamp": when, "value": values[f"{f.target}[t+{h}]"]}
            if f"lo_{BAND}[t+{h}]" in values:
                step[f"lo_{BAND}"] = values[f"lo_{BAND}[t+{h}]"]
                step[f"hi_{BAND}"] = values[f"hi_{BAND}[t+{h}]"]
            steps.append(step)
        out.append((origin, steps))
    return out


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Nanoseconds since the epoch (UTC), whatever unit pandas keeps the index in: the
    ledger's and the observations' time keys."""
    return index.as_unit("ns").asi8


def _timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch, a naive time read as UTC (as the observations table does)."""
    stamp = pd.Timestamp(text)
    if stamp.tz is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.value
