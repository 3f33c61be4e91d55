"""The monitor's tables in the store's database: issued forecasts, matured errors, alarms, jobs.

Every forecast the service issues from a new origin is kept (`forecasts`); once the actual of
one of its steps arrives, the pair becomes a matured error (`errors`), which is what drift is
judged on. `alarms` remembers which drift alarms were already raised, and `jobs` which model
has a retraining running, so that two uvicorn workers watching the same store raise each alarm
once and start one retraining, not two (both rely on a primary key: the first insert wins).
The tables live beside the events, in SQLite or PostgreSQL (database.py, sql.py).

>>> ledger = Ledger(store.db)
>>> ledger.record_forecasts("demand", "2", [(origin_ns, "2024-01-08T00:00:00", steps_json)])
>>> ledger.one_step_errors("demand", "2")      # (target ns, error) pairs, oldest first
"""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np

from deepcast.serving.database import Database

REMOTE_JOB_HOURS = 24  # how long a retraining started on another machine holds its slot
_HOST = socket.gethostname()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    origin BIGINT NOT NULL,
    origin_text TEXT NOT NULL,
    issued DOUBLE PRECISION NOT NULL,
    steps TEXT NOT NULL,
    PRIMARY KEY (model, version, origin)
);
CREATE TABLE IF NOT EXISTS errors (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    origin BIGINT NOT NULL,
    step INTEGER NOT NULL,
    ts BIGINT NOT NULL,
    timestamp TEXT NOT NULL,
    forecast DOUBLE PRECISION NOT NULL,
    actual DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (model, version, origin, step)
);
CREATE INDEX IF NOT EXISTS errors_by_step ON errors (model, version, step, ts);
CREATE TABLE IF NOT EXISTS alarms (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    detector TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (model, version, detector, ts)
);
CREATE TABLE IF NOT EXISTS jobs (
    model TEXT PRIMARY KEY,
    host TEXT,
    pid INTEGER,
    started DOUBLE PRECISION NOT NULL
);
"""


class Ledger:
    """Issued forecasts, matured errors, raised alarms and running jobs of a store."""

    def __init__(self, db: Database):
        self.db = db
        db.create_tables(_SCHEMA)

    # -- issued forecasts ------------------------------------------------------------------
    def last_origin(self, model: str, version: str | None) -> int | None:
        """The newest origin (ns) `version` (None: any version) forecast from, or None."""
        with self.db.connect() as con:
            if version is None:
                query, args = "SELECT MAX(origin) FROM forecasts WHERE model = ?", (model,)
            else:
                query = "SELECT MAX(origin) FROM forecasts WHERE model = ? AND version = ?"
                args = (model, version)
            row = con.execute(query, args).fetchone()
        return row[0]

    def first_origin(self, model: str, version: str) -> int | None:
        """The oldest origin (ns) `version` forecast from: when it went live, in series time."""
        with self.db.connect() as con:
            row = con.execute(
                "SELECT MIN(origin) FROM forecasts WHERE model = ? AND version = ?",
                (model, version),
            ).fetchone()
        return row[0]

    def record_forecasts(self, model: str, version: str, rows: list[tuple[int, str, str]]) -> int:
        """Keep (origin ns, origin text, steps JSON) forecasts; one already kept is left alone
        (another worker issued it). Returns how many were new."""
        now = time.time()
        with self.db.connect() as con:
            return con.executemany(
                "INSERT INTO forecasts (model, version, origin, origin_text, issued, steps) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(model, version, o, text, now, steps) for o, text, steps in rows],
            )

    def latest_forecast(self, model: str, version: str) -> dict | None:
        """{"origin", "forecast": [...]} of the newest forecast `version` issued, or None."""
        with self.db.connect() as con:
            row = con.execute(
                "SELECT origin_text, steps FROM forecasts WHERE model = ? AND version = ? "
                "ORDER BY origin DESC LIMIT 1",
                (model, version),
            ).fetchone()
        return None if row is None else {"origin": row[0], "forecast": json.loads(row[1])}

    def forecasts_since(self, model: str, origin: int) -> list[tuple[str, int, list]]:
        """(version, origin ns, steps) of every forecast from `origin` (ns) on, any version."""
        with self.db.connect() as con:
            rows = con.execute(
                "SELECT version, origin, steps FROM forecasts WHERE model = ? AND origin >= ? "
                "ORDER BY origin",
                (model, origin),
            ).fetchall()
        return [(v, o, json.loads(steps)) for v, o, steps in rows]

    # -- matured errors --------------------------------------------------------------------
    def record_errors(self, model: str, rows: list[tuple]) -> int:
        """Keep (version, origin ns, step, target ns, target text, forecast, actual) rows."""
        with self.db.connect() as con:
            return con.executemany(
                "INSERT INTO errors (model, version, origin, step, ts, timestamp, forecast, "
                "actual) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(model, *row) for row in rows],
            )

    def one_step_errors(self, model: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        """(target ns [n], actual - forecast [n]) of `version`'s one-step forecasts, oldest
        first: the series the error detector scans."""
        with self.db.connect() as con:
            rows = con.execute(
                "SELECT ts, actual - forecast FROM errors WHERE model = ? AND version = ? "
                "AND step = 1 ORDER BY ts",
                (model, version),
            ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ts, errors = zip(*rows)
        return np.asarray(ts, dtype=np.int64), np.asarray(errors, dtype=np.float64)

    def recent_errors(self, model: str, limit: int) -> list[dict]:
        """The newest `limit` one-step errors of any version, oldest first, for the dashboard."""
        with self.db.connect() as con:
            rows = con.execute(
                "SELECT timestamp, version, actual - forecast FROM errors WHERE model = ? "
                "AND step = 1 ORDER BY ts DESC LIMIT ?",
                (model, limit),
            ).fetchall()
        return [{"timestamp": t, "version": v, "error": e} for t, v, e in reversed(rows)]

    # -- alarms and jobs -------------------------------------------------------------------
    def claim_alarm(self, model: str, version: str, detector: str, ts: int) -> bool:
        """True for the first caller to raise this alarm; False when it was raised before."""
        with self.db.connect() as con:
            cursor = con.execute(
                "INSERT INTO alarms (model, version, detector, ts) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (model, version, detector, ts),
            )
            return cursor.rowcount == 1

    def claim_job(self, model: str) -> bool:
        """True if no retraining of `model` runs (and this caller now holds the slot). A slot
        whose process is gone (killed, machine restarted) is taken over."""
        with self.db.connect() as con, con.transaction():
            # The first claim creates the row; later ones lock it (PostgreSQL; SQLite's
            # BEGIN IMMEDIATE already keeps other writers out) and decide on what they read.
            created = con.execute(
                "INSERT INTO jobs (model, pid, started) VALUES (?, NULL, ?) ON CONFLICT DO NOTHING",
                (model, time.time()),
            )
            if created.rowcount == 1:
                return True
            row = con.execute(
                "SELECT host, pid, started FROM jobs WHERE model = ?" + con.for_update, (model,)
            ).fetchone()
            if row is not None and _holds(*row):
                return False
            con.execute(
                "INSERT INTO jobs (model, pid, started) VALUES (?, NULL, ?) ON CONFLICT (model) "
                "DO UPDATE SET host = NULL, pid = NULL, started = excluded.started",
                (model, time.time()),
            )
            return True

    def job_started(self, model: str, pid: int) -> None:
        with self.db.connect() as con:
            con.execute("UPDATE jobs SET host = ?, pid = ? WHERE model = ?", (_HOST, pid, model))

    def release_job(self, model: str) -> None:
        with self.db.connect() as con:
            con.execute("DELETE FROM jobs WHERE model = ?", (model,))

    def job_running(self, model: str) -> bool:
        with self.db.connect() as con:
            row = con.execute(
                "SELECT host, pid, started FROM jobs WHERE model = ?", (model,)
            ).fetchone()
        return row is not None and _holds(*row)


def _holds(host: str | None, pid: int | None, started: float) -> bool:
    """A slot is held by a live process, or by one being started (for up to a minute). A
    process on another machine (servers sharing a PostgreSQL store) cannot be asked: its slot
    counts as held for up to a day, unless `deepcast retrain` there releases it sooner."""
    if pid is None:
        return time.time() - started < 60
    if host not in (None, _HOST):
        return time.time() - started < REMOTE_JOB_HOURS * 3600
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
