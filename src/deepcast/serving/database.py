"""The store's database: events (publish, promote, activate, drift, retrain) and observations
per model; the monitor's tables (issued forecasts, matured errors) live in ledger.py.

SQLite in the store directory by default (`STORE/deepcast.db`), in WAL mode so readers and one
writer never block each other across uvicorn workers, one short-lived connection per call. Or
PostgreSQL by URL, when several servers share one store (a connection pool per process). The
queries are written once; what the two backends do differently is in sql.py.

>>> db = Database(Path("store") / "deepcast.db")      # or Database("postgresql://...")
>>> db.add_event("demand", "promoted", {"from": "1"}, version="2")
>>> db.append_observations("demand", [(ts_ns, "2024-01-01T00:00:00", '{"y": 1.0}')])
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from deepcast.serving.sql import Connection, Postgres, open_backend, public_url

# `{identity}`: the auto-numbered key, spelled per backend (sql.py)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id {identity},
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_model ON events (model, id);
CREATE TABLE IF NOT EXISTS observations (
    model TEXT NOT NULL,
    ts BIGINT NOT NULL,
    timestamp TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (model, ts)
);
"""
_CHUNK = 500  # timestamps per `IN (...)` list


class Database:
    """Events and observations in a SQLite file (created on first use) or, given a
    postgresql:// URL, in that PostgreSQL database (ConfigError if it cannot be reached)."""

    def __init__(self, path: str | os.PathLike):
        self.backend = open_backend(path)
        postgres = isinstance(self.backend, Postgres)
        self.url = public_url(self.backend.url) if postgres else None  # never the password
        self.path = None if self.url else Path(path)
        self._created: set[str] = set()
        self.create_tables(_SCHEMA)

    def create_tables(self, schema: str) -> None:
        """Run `CREATE ... IF NOT EXISTS` statements (`{identity}` spelled for the backend),
        once per schema and object."""
        if schema not in self._created:
            self.backend.create(schema.format(identity=self.backend.identity))
            self._created.add(schema)

    def close(self) -> None:
        """Close this process's PostgreSQL connections (nothing to do for SQLite)."""
        if isinstance(self.backend, Postgres):
            self.backend.close()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection (sql.Connection: `execute`, `executemany`, `transaction`), `?`
        placeholders on either backend."""
        with self.backend.connect() as con:
            yield con

    # -- events ----------------------------------------------------------------------------
    def add_event(self, model: str, kind: str, detail: dict, version: str | None = None) -> None:
        """Record event `kind` of `model` (about `version`, when one is concerned)."""
        with self.connect() as db:
            db.execute(
                "INSERT INTO events (model, kind, at, detail) VALUES (?, ?, ?, ?)",
                (model, kind, time.time(), json.dumps({"version": version, "detail": detail})),
            )

    def events(self, model: str, limit: int = 100, kinds: tuple[str, ...] = ()) -> list[dict]:
        """The newest `limit` events of `model` (only `kinds`, if given), oldest first, as
        {"id", "time" (ISO, UTC), "type", "version", "detail"}."""
        where, args = "model = ?", [model]
        if kinds:
            where += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        with self.connect() as db:
            rows = db.execute(
                f"SELECT id, kind, at, detail FROM events WHERE {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_event(*row) for row in reversed(rows)]

    # -- observations ----------------------------------------------------------------------
    def append_observations(self, model: str, rows: list[tuple[int, str, str]]) -> dict:
        """Insert (ts_ns, timestamp text, data JSON) rows in one transaction; a row already
        stored with the same data is left alone, with other data it is replaced. Returns the
        counts {"inserted", "replaced", "unchanged"}."""
        counts = {"inserted": 0, "replaced": 0, "unchanged": 0}
        with self.connect() as db, db.transaction():
            db.lock(f"observations {model}")  # PostgreSQL: one writer per model at a time
            stored = self._stored_data(db, model, sorted({ts for ts, _, _ in rows}))
            changed = []
            for ts, text, data in rows:
                old = stored.get(ts)
                if old == data:
                    counts["unchanged"] += 1
                    continue
                counts["inserted" if old is None else "replaced"] += 1
                stored[ts] = data
                changed.append((model, ts, text, data))
            db.executemany(
                "INSERT INTO observations (model, ts, timestamp, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, ts) DO UPDATE SET timestamp = excluded.timestamp, "
                "data = excluded.data",
                changed,
            )
        return counts

    @staticmethod
    def _stored_data(db: Connection, model: str, timestamps: list[int]) -> dict[int, str]:
        """{ts: data JSON} of those of `timestamps` stored for `model`."""
        found = {}
        for start in range(0, len(timestamps), _CHUNK):
            chunk = timestamps[start : start + _CHUNK]
            found.update(
                db.execute(
                    f"SELECT ts, data FROM observations WHERE model = ? AND ts IN "
                    f"({','.join('?' * len(chunk))})",
                    (model, *chunk),
                ).fetchall()
            )
        return found

    def stored_timestamps(self, model: str, timestamps: list[int]) -> set[int]:
        """Which of `timestamps` (ns) are stored for `model`."""
        with self.connect() as db:
            return set(self._stored_data(db, model, list(timestamps)))

    def last_timestamp(self, model: str) -> int | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT MAX(ts) FROM observations WHERE model = ?", (model,)
            ).fetchone()
        return row[0]

    def count_since(self, model: str, ts: int) -> int:
        """How many observations of `model` are newer than `ts` (ns)."""
        with self.connect() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM observations WHERE model = ? AND ts > ?", (model, ts)
            ).fetchone()
        return row[0]

    def observations_since(self, model: str, ts: int, limit: int | None = None) -> list[dict]:
        """Observations of `model` from `ts` (ns) on, oldest first (the newest `limit`)."""
        sql = (
            "SELECT timestamp, data FROM observations WHERE model = ? AND ts >= ? ORDER BY ts DESC"
        )
        args: tuple = (model, ts)
        if limit is not None:
            sql, args = sql + " LIMIT ?", (*args, limit)
        with self.connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [{"timestamp": text, **json.loads(data)} for text, data in reversed(rows)]

    def latest_observations(self, model: str, n: int) -> list[dict]:
        """The newest `n` observations of `model` as records, oldest first."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT timestamp, data FROM observations WHERE model = ? ORDER BY ts DESC LIMIT ?",
                (model, n),
            ).fetchall()
        return [{"timestamp": text, **json.loads(data)} for text, data in reversed(rows)]


def _event(event_id: int, kind: str, at: float, stored: str) -> dict:
    body = json.loads(stored)
    if "detail" not in body:  # a store written before events named their version
        body = {"version": body.get("version", body.get("to")), "detail": body}
    when = datetime.fromtimestamp(at, tz=timezone.utc).isoformat(timespec="milliseconds")
    return {
        "id": event_id,
        "time": when,
        "type": kind,
        "version": body["version"],
        "detail": body["detail"],
    }
